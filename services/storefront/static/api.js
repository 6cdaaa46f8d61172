// The storefront's JSON API as the fitting room calls it: one function per route.

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code;
    this.requestId = body.request_id;
  }
}

async function call(method, path, payload) {
  const options = { method, headers: { accept: "application/json" } };
  if (payload !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(payload);
  }
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const item of [].concat(value)) {
      if (item !== undefined && item !== null && item !== "") search.append(name, item);
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

const shopper = (userId) => `/v1/shoppers/${encodeURIComponent(userId)}`;

export const createBody = (measurements, sex) => call("POST", "/v1/bodies", { measurements, sex: sex || null });

export const recommendations = (userId, bodyId, k = 12) =>
  call("GET", `${shopper(userId)}/recommendations${query({ body_id: bodyId, k })}`);

export const outfits = (userId, bodyId, k = 3) => call("GET", `${shopper(userId)}/outfits${query({ body_id: bodyId, k })}`);

export const recordInteractions = (userId, interactions) =>
  call("POST", `${shopper(userId)}/interactions`, { interactions });

export const recordInteraction = (userId, garmentId, type) => recordInteractions(userId, [{ garment_id: garmentId, type }]);

export const deleteMyData = (userId, bodyId) => call("DELETE", `${shopper(userId)}${query({ body_id: bodyId })}`);

const bodyPath = (bodyId) => `/v1/bodies/${encodeURIComponent(bodyId)}`;

// A try-on's garments as the API takes them: ID:SIZE, an empty size meaning the body's own.
const sized = (items) => items.map((item) => `${item.garment.garment_id}:${item.size}`);

export const sizeAdvice = (bodyId, garmentId) => call("GET", `${bodyPath(bodyId)}/size-advice${query({ garment_id: garmentId })}`);

export const tryOnUrl = (bodyId, items, view = "front") =>
  `${bodyPath(bodyId)}/try-on.png${query({ garment: sized(items), view, width: 256, height: 512 })}`;

export const tryOnFit = (bodyId, items) => call("GET", `${bodyPath(bodyId)}/try-on${query({ garment: sized(items) })}`);

// The dressed body as GLB, or the bare body's mesh when nothing is tried on.
export async function bodyModel(bodyId, items) {
  const path = items.length > 0
    ? `${bodyPath(bodyId)}/try-on.glb${query({ garment: sized(items), texture_size: 512 })}`
    : `${bodyPath(bodyId)}/mesh.glb`;
  const response = await fetch(path);
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
  return response.arrayBuffer();
}

export const pictureUrl = (garment, maxSide) => `${garment.picture_url}${query({ max_side: maxSide })}`;
