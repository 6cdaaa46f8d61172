// A small 3D viewer of the binary glTF the storefront serves (a body, dressed or not), without dependencies.
//
// It reads what tryon's GLB writer writes (shared/glb.py): triangle meshes with float positions,
// optional texture coordinates, unsigned indices, and a material that is a colour or an embedded
// PNG texture. With WebGL it draws the textured faces through a depth buffer, each face lit by
// one light from the viewer's side. Without WebGL (a browser that has none, or a headless one
// without a GPU) it paints on a 2D canvas with the painter's algorithm: faces turned away are
// dropped, the rest drawn far to near, each in its texture's colour at its centre, lit the same.
// Both show the body in the same place and size at every angle: y up, turned about the vertical.

const MAGIC = 0x46546c67; // "glTF"
const CHUNK_JSON = 0x4e4f534a;
const CHUNK_BIN = 0x004e4942;
const COMPONENTS = { SCALAR: 1, VEC2: 2, VEC3: 3, VEC4: 4 };
const ARRAYS = { 5121: Uint8Array, 5123: Uint16Array, 5125: Uint32Array, 5126: Float32Array };
const LIGHT = normalise([0.35, 0.45, 1]);

function normalise([x, y, z]) {
  const length = Math.hypot(x, y, z) || 1;
  return [x / length, y / length, z / length];
}

function accessorArray(document, binary, index) {
  const accessor = document.accessors[index];
  const view = document.bufferViews[accessor.bufferView];
  const Type = ARRAYS[accessor.componentType];
  if (!Type || view.byteStride) throw new Error("the model uses a layout this viewer does not read");
  const offset = binary.byteOffset + (view.byteOffset || 0) + (accessor.byteOffset || 0);
  // Copied, so that the typed array's alignment does not depend on the chunk's.
  return new Type(binary.buffer.slice(offset, offset + accessor.count * COMPONENTS[accessor.type] * Type.BYTES_PER_ELEMENT));
}

// glTF's base colour factors are linear; the canvas wants sRGB.
const toSrgb = (linear) => Math.round(255 * Math.min(1, Math.max(0, linear)) ** (1 / 2.2));

async function texturePixels(document, binary, material) {
  const info = material?.pbrMetallicRoughness?.baseColorTexture;
  if (!info) return null;
  const image = document.images[document.textures[info.index].source];
  const view = document.bufferViews[image.bufferView];
  const start = binary.byteOffset + (view.byteOffset || 0);
  const blob = new Blob([binary.buffer.slice(start, start + view.byteLength)], { type: image.mimeType || "image/png" });
  const bitmap = await createImageBitmap(blob);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d");
  context.drawImage(bitmap, 0, 0);
  return context.getImageData(0, 0, bitmap.width, bitmap.height);
}

// One colour per face: the texture at the face's centre, or the material's colour.
function faceColours(indices, uv, pixels, base) {
  const colours = new Uint8ClampedArray((indices.length / 3) * 4);
  for (let face = 0; face < indices.length / 3; face += 1) {
    let [r, g, b, a] = base;
    if (pixels && uv) {
      let u = 0;
      let v = 0;
      for (let corner = 0; corner < 3; corner += 1) {
        u += uv[indices[face * 3 + corner] * 2] / 3;
        v += uv[indices[face * 3 + corner] * 2 + 1] / 3;
      }
      const x = Math.min(pixels.width - 1, Math.max(0, Math.floor(u * pixels.width)));
      const y = Math.min(pixels.height - 1, Math.max(0, Math.floor(v * pixels.height)));
      const at = (y * pixels.width + x) * 4;
      [r, g, b, a] = pixels.data.subarray(at, at + 4);
    }
    colours.set([r, g, b, a], face * 4);
  }
  return colours;
}

/** The triangle meshes of a GLB's bytes, with one colour per face. */
export async function parseGlb(buffer) {
  const header = new DataView(buffer);
  if (buffer.byteLength < 20 || header.getUint32(0, true) !== MAGIC) throw new Error("not a binary glTF");
  let document = null;
  let binary = null;
  for (let offset = 12; offset + 8 <= buffer.byteLength;) {
    const length = header.getUint32(offset, true);
    const kind = header.getUint32(offset + 4, true);
    const bytes = new Uint8Array(buffer, offset + 8, length);
    if (kind === CHUNK_JSON) document = JSON.parse(new TextDecoder().decode(bytes));
    if (kind === CHUNK_BIN) binary = bytes;
    offset += 8 + length;
  }
  if (!document || !binary) throw new Error("the glTF has no JSON or no binary chunk");
  const meshes = [];
  for (const mesh of document.meshes || []) {
    for (const primitive of mesh.primitives) {
      if ((primitive.mode ?? 4) !== 4) continue;
      const positions = accessorArray(document, binary, primitive.attributes.POSITION);
      const indices = accessorArray(document, binary, primitive.indices);
      const uv = primitive.attributes.TEXCOORD_0 === undefined ? null
        : accessorArray(document, binary, primitive.attributes.TEXCOORD_0);
      const material = document.materials?.[primitive.material];
      const factor = material?.pbrMetallicRoughness?.baseColorFactor || [0.75, 0.62, 0.55, 1];
      const base = [toSrgb(factor[0]), toSrgb(factor[1]), toSrgb(factor[2]), Math.round(255 * factor[3])];
      const pixels = await texturePixels(document, binary, material);
      meshes.push({ positions, indices, uv, pixels, base, colours: faceColours(indices, uv, pixels, base) });
    }
  }
  if (meshes.length === 0) throw new Error("the glTF has no triangle mesh");
  return meshes;
}

// Height range and largest distance from the vertical axis: what fits the body in the canvas at any angle.
function extent(meshes) {
  let [minY, maxY, maxRadius] = [Infinity, -Infinity, 0];
  for (const { positions } of meshes) {
    for (let i = 0; i < positions.length; i += 3) {
      minY = Math.min(minY, positions[i + 1]);
      maxY = Math.max(maxY, positions[i + 1]);
      maxRadius = Math.max(maxRadius, Math.hypot(positions[i], positions[i + 2]));
    }
  }
  return { minY, maxY, maxRadius: maxRadius || 1 };
}

// Pixels per metre: the same at every angle, so that turning never resizes the body.
const pixelsPerMetre = ({ minY, maxY, maxRadius }, width, height) =>
  0.92 * Math.min(height / (maxY - minY || 1), width / (2 * maxRadius));

/** Draws meshes on a 2D canvas by the painter's algorithm, turned by `yaw` radians about the vertical axis. */
export function paint(canvas, meshes, yaw) {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  const { minY, maxY, maxRadius } = extent(meshes);
  const scale = pixelsPerMetre({ minY, maxY, maxRadius }, width, height);
  const [cos, sin] = [Math.cos(yaw), Math.sin(yaw)];
  const faces = [];
  for (const { positions, indices, colours } of meshes) {
    const count = positions.length / 3;
    const screen = new Float32Array(count * 3);
    for (let v = 0; v < count; v += 1) {
      const [x, y, z] = [positions[v * 3], positions[v * 3 + 1], positions[v * 3 + 2]];
      screen[v * 3] = width / 2 + scale * (x * cos + z * sin);
      screen[v * 3 + 1] = height - (height - scale * (maxY - minY)) / 2 - scale * (y - minY);
      screen[v * 3 + 2] = -x * sin + z * cos;
    }
    for (let face = 0; face < indices.length / 3; face += 1) {
      const [a, b, c] = [indices[face * 3] * 3, indices[face * 3 + 1] * 3, indices[face * 3 + 2] * 3];
      // Counter-clockwise seen from outside is clockwise on a y-down screen: the others face away.
      const cross = (screen[b] - screen[a]) * (screen[c + 1] - screen[a + 1])
        - (screen[b + 1] - screen[a + 1]) * (screen[c] - screen[a]);
      if (cross >= 0) continue;
      const depth = screen[a + 2] + screen[b + 2] + screen[c + 2];
      faces.push({ screen, a, b, c, depth, colours, face });
    }
  }
  faces.sort((first, second) => first.depth - second.depth);
  for (const { screen, a, b, c, colours, face } of faces) {
    const [ux, uy, uz] = [screen[b] - screen[a], screen[b + 1] - screen[a + 1], (screen[b + 2] - screen[a + 2]) * scale];
    const [vx, vy, vz] = [screen[c] - screen[a], screen[c + 1] - screen[a + 1], (screen[c + 2] - screen[a + 2]) * scale];
    // The face's outward normal in view space: the edges' cross product with screen y turned back up.
    const normal = normalise([uz * vy - uy * vz, uz * vx - ux * vz, uy * vx - ux * vy]);
    const light = 0.35 + 0.65 * Math.max(0, normal[0] * LIGHT[0] + normal[1] * LIGHT[1] + normal[2] * LIGHT[2]);
    const [r, g, bl, alpha] = colours.subarray(face * 4, face * 4 + 4);
    context.fillStyle = `rgba(${r * light | 0},${g * light | 0},${bl * light | 0},${alpha / 255})`;
    context.strokeStyle = context.fillStyle;
    context.beginPath();
    context.moveTo(screen[a], screen[a + 1]);
    context.lineTo(screen[b], screen[b + 1]);
    context.lineTo(screen[c], screen[c + 1]);
    context.closePath();
    context.fill();
    // A hairline over each edge hides the seams antialiasing leaves between neighbouring faces.
    context.stroke();
  }
}

const VERTEX_SHADER = `
attribute vec3 position;
attribute vec3 normal;
attribute vec2 uv;
uniform vec2 turn;     // cos and sin of the yaw
uniform vec3 frame;    // height of the middle of the body, pixels per metre over half the canvas (x, y)
uniform float radius;  // largest distance from the vertical axis, for depth
varying vec2 textureAt;
varying float light;
void main() {
  vec3 turned = vec3(position.x * turn.x + position.z * turn.y, position.y, -position.x * turn.y + position.z * turn.x);
  vec3 facing = vec3(normal.x * turn.x + normal.z * turn.y, normal.y, -normal.x * turn.y + normal.z * turn.x);
  gl_Position = vec4(turned.x * frame.y, (turned.y - frame.x) * frame.z, -turned.z / (radius * 2.0), 1.0);
  light = 0.35 + 0.65 * max(0.0, dot(normalize(facing), normalize(vec3(0.35, 0.45, 1.0))));
  textureAt = uv;
}`;

const FRAGMENT_SHADER = `
precision mediump float;
uniform sampler2D picture;
varying vec2 textureAt;
varying float light;
void main() {
  vec4 colour = texture2D(picture, textureAt);
  gl_FragColor = vec4(colour.rgb * light, colour.a);
}`;

function compile(gl, kind, source) {
  const shader = gl.createShader(kind);
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
  return shader;
}

// One vertex per face corner, so that each face carries its own (flat) normal, as the 2D painter lights it.
function faceVertices({ positions, indices, uv }) {
  const corners = indices.length;
  const [points, normals, uvs] = [new Float32Array(corners * 3), new Float32Array(corners * 3), new Float32Array(corners * 2)];
  for (let face = 0; face < corners / 3; face += 1) {
    const [a, b, c] = [indices[face * 3] * 3, indices[face * 3 + 1] * 3, indices[face * 3 + 2] * 3];
    const u = [positions[b] - positions[a], positions[b + 1] - positions[a + 1], positions[b + 2] - positions[a + 2]];
    const v = [positions[c] - positions[a], positions[c + 1] - positions[a + 1], positions[c + 2] - positions[a + 2]];
    const normal = normalise([u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]]);
    for (let corner = 0; corner < 3; corner += 1) {
      const vertex = indices[face * 3 + corner];
      const at = face * 3 + corner;
      points.set(positions.subarray(vertex * 3, vertex * 3 + 3), at * 3);
      normals.set(normal, at * 3);
      if (uv) uvs.set(uv.subarray(vertex * 2, vertex * 2 + 2), at * 2);
    }
  }
  return { points, normals, uvs, count: corners };
}

function upload(gl, program, name, values, size) {
  const buffer = gl.createBuffer();
  gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
  gl.bufferData(gl.ARRAY_BUFFER, values, gl.STATIC_DRAW);
  return { buffer, location: gl.getAttribLocation(program, name), size };
}

function texture(gl, mesh) {
  const handle = gl.createTexture();
  gl.bindTexture(gl.TEXTURE_2D, handle);
  if (mesh.pixels) {
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, mesh.pixels);
  } else {
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, 1, 1, 0, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(mesh.base));
  }
  // Any size of texture: no mipmaps, no repeat (WebGL 1 allows only these for sizes not powers of two).
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
  return handle;
}

/** A viewer on `canvas`: `show(meshes)` then `draw(yaw)`; WebGL when the browser gives it, else the 2D painter (`kind`). */
export function createViewer(canvas) {
  // preserveDrawingBuffer: the picture stays readable after it is shown (screenshots, tests).
  const gl = canvas.getContext("webgl", { preserveDrawingBuffer: true, antialias: true });
  if (!gl) {
    let shown = null;
    return { kind: "2d", show: (meshes) => { shown = meshes; }, draw: (yaw) => paint(canvas, shown, yaw) };
  }
  const program = gl.createProgram();
  gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX_SHADER));
  gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT_SHADER));
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
  const uniform = (name) => gl.getUniformLocation(program, name);
  let parts = [];
  let bounds = null;
  return {
    kind: "webgl",
    show(meshes) {
      for (const part of parts) {
        for (const attribute of part.attributes) gl.deleteBuffer(attribute.buffer);
        gl.deleteTexture(part.texture);
      }
      bounds = extent(meshes);
      parts = meshes.map((mesh) => {
        const { points, normals, uvs, count } = faceVertices(mesh);
        return {
          count,
          texture: texture(gl, mesh),
          attributes: [upload(gl, program, "position", points, 3), upload(gl, program, "normal", normals, 3),
            upload(gl, program, "uv", uvs, 2)],
        };
      });
    },
    draw(yaw) {
      const { width, height } = canvas;
      gl.viewport(0, 0, width, height);
      gl.clearColor(0, 0, 0, 0);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      gl.enable(gl.DEPTH_TEST);
      gl.enable(gl.CULL_FACE);
      gl.useProgram(program);
      const scale = pixelsPerMetre(bounds, width, height);
      gl.uniform2f(uniform("turn"), Math.cos(yaw), Math.sin(yaw));
      gl.uniform3f(uniform("frame"), (bounds.minY + bounds.maxY) / 2, (2 * scale) / width, (2 * scale) / height);
      gl.uniform1f(uniform("radius"), bounds.maxRadius);
      gl.uniform1i(uniform("picture"), 0);
      for (const part of parts) {
        for (const { buffer, location, size } of part.attributes) {
          gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
          gl.enableVertexAttribArray(location);
          gl.vertexAttribPointer(location, size, gl.FLOAT, false, 0, 0);
        }
        gl.activeTexture(gl.TEXTURE0);
        gl.bindTexture(gl.TEXTURE_2D, part.texture);
        gl.drawArrays(gl.TRIANGLES, 0, part.count);
      }
    },
  };
}
