"""The JSON shapes of the storefront's HTTP API; the OpenAPI document is generated from them.

Measurements keep the services' units (millimetres, and kilograms for weight) and names
(``services/body/measurements.py``); categories and interaction types are lower-case words.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from tryon.shared.contract import CATEGORY_NAMES, MAX_ID_LENGTH

Category = Literal[CATEGORY_NAMES]  # type: ignore[valid-type]
Sex = Literal["female", "male"]
InteractionKind = Literal["view", "try_on", "add_to_cart", "purchase", "return", "like", "dislike"]
ReturnReason = Literal["too_small", "too_large", "other"]
Identifier = Field(min_length=1, max_length=MAX_ID_LENGTH)


class ErrorBody(BaseModel):
    """What every failed request answers, with the HTTP status its gRPC code implies."""

    code: str = Field(description="google.rpc.Code name, e.g. NOT_FOUND or INVALID_ARGUMENT")
    message: str = Field(description="What went wrong, as the service said it")
    request_id: str = Field(description="The request's id, also in the x-request-id header")


class CreateBody(BaseModel):
    """A few measurements of a shopper; the rest are inferred."""

    measurements: dict[str, float] = Field(
        description="Measurement name to value in mm (weight in kg); stature and weight are required",
        examples=[{"stature": 1680, "weight": 64, "waist_circumference": 760}],
    )
    sex: Sex | None = Field(default=None, description="Sex of the shopper, if given")


class Measurement(BaseModel):
    """One measurement of a body, given or inferred, with its 90% interval."""

    name: str
    unit: str
    value: float
    stddev: float
    lower_90: float
    upper_90: float
    observed: bool = Field(description="True when the shopper gave it, false when it was inferred")


class Body(BaseModel):
    """A stored body."""

    body_id: str
    sex: Sex | None
    measurements: list[Measurement]
    created_at: str = Field(description="RFC 3339 time of creation")
    silhouette_url: str = Field(description="Where the front-view silhouette PNG is served")


class DeletedBody(BaseModel):
    """The body that was deleted."""

    body_id: str


class SizeFit(BaseModel):
    """Probability that one size fits."""

    label: str
    probability: float


class SizeAdvice(BaseModel):
    """The advised size of a size chart for a body."""

    recommended_size: str
    probability: float = Field(description="Fit probability of the recommended size")
    fits: list[SizeFit] = Field(description="Every size of the chart, in chart order")
    deciding_measurement: str
    explanation: str


class Keypoint3D(BaseModel):
    """A landmark of a body's mesh in millimetres: x to the body's left, y up from the floor, z to its front."""

    name: str
    x_mm: float
    y_mm: float
    z_mm: float


class BodyMesh(BaseModel):
    """What BodyService fitted for a body: the mesh's landmarks and dimensions, and where its GLB is served."""

    body_id: str
    glb_url: str = Field(description="Where the mesh is served as binary glTF (metres, y up, facing +z)")
    vertex_count: int
    triangle_count: int
    keypoints: list[Keypoint3D]
    mesh_measurements: dict[str, float] = Field(
        description="Dimensions measured on the mesh in mm (stature, girths, inseam, shoulder breadth); "
        "their difference to the body's own values is the fit error"
    )


# "unspecified" only when a service sends no value: the storefront never guesses a verdict.
FitVerdict = Literal["tight", "fitting", "loose", "short", "long", "unspecified"]
SizeChoice = Literal["requested", "body_size", "no_chart", "unspecified"]


class MeasurementFit(BaseModel):
    """One measurement of a garment at one size against the body."""

    measurement: str = Field(description="Measurement name, e.g. chest_circumference")
    body_mm: float = Field(description="The body's value, measured on its mesh")
    garment_mm: float = Field(description="The garment's own value at this size")
    ease_mm: float = Field(description="garment_mm - body_mm: room the garment leaves (negative: it pulls)")
    verdict: FitVerdict = Field(
        description="tight or loose when the body lies below or above the size's range (short or long for the "
        "inseam), fitting inside it"
    )


class GarmentFit(BaseModel):
    """How one garment at one size fits the body."""

    garment_id: str
    size_label: str = Field(description="The size drawn; empty when the garment has no size chart")
    size_choice: SizeChoice = Field(
        description="requested: the size asked for; body_size: none asked, the chart's size for the body; "
        "no_chart: drawn at the body's own girths"
    )
    measurements: list[MeasurementFit] = Field(description="Per measurement of the chart; empty without a chart")


class TryOnFit(BaseModel):
    """The fit of each garment at its size, in request order, and where its pictures are served."""

    fits: list[GarmentFit]
    picture_url: str = Field(description="The try-on PNG of the same garments, sizes and view")
    model_url: str = Field(description="The dressed body as binary glTF, for a 3D viewer")


class Money(BaseModel):
    """An amount in the currency's minor unit (cents)."""

    currency_code: str
    amount_minor: int


class Garment(BaseModel):
    """A catalogue garment."""

    garment_id: str
    name: str
    category: Category
    price: Money | None
    size_chart_id: str | None = Field(description="Shipped size chart, if the garment has one by id")
    has_size_chart: bool = Field(description="Whether size advice can be given for the garment")
    image_url: str = Field(description="The 28 x 28 grey form the generative models use")
    picture_url: str = Field(description="The colour product picture it was registered with")
    created_at: str


class GarmentPage(BaseModel):
    """One page of the catalogue."""

    garments: list[Garment]
    next_page_token: str = Field(description="Pass as page_token for the next page; empty on the last")


class RecommendedGarment(BaseModel):
    """A garment picked for a shopper, with its size advice when a body is known."""

    score: float = Field(description="Higher is better; comparable within one answer only")
    garment: Garment
    size_advice: SizeAdvice | None = Field(description="For the body asked about, when the garment has a chart")


class Recommendations(BaseModel):
    """Garments for a shopper, best first."""

    items: list[RecommendedGarment]
    cold_start: bool = Field(description="True when the shopper has no history and the order is by popularity")
    history_size: int = Field(description="Interactions of the shopper the answer was computed from")


class SimilarGarments(BaseModel):
    """Garments near one garment, most similar first."""

    items: list[RecommendedGarment]


class Outfit(BaseModel):
    """Garments that go together: a top or dress, a bottom unless a dress, shoes."""

    score: float
    items: list[RecommendedGarment]


class Outfits(BaseModel):
    """Outfits for a shopper, best first."""

    outfits: list[Outfit]
    cold_start: bool


class Interaction(BaseModel):
    """One thing the shopper did with a garment; an order system adds to a purchase or a return the
    order, the size and the body, from which the recommender learns how garments and bodies fit."""

    garment_id: str = Identifier
    type: InteractionKind = Field(
        description="like and dislike are recorded as the strongest signals of tryon.v1, purchase and return"
    )
    session_id: str | None = Field(
        None, min_length=1, max_length=MAX_ID_LENGTH,
        description="Order or shopping session, not on like or dislike: garments purchased under one id count as "
        "bought together",
    )
    size: str | None = Field(
        None, min_length=1, max_length=MAX_ID_LENGTH,
        description="Only on purchase and return: the size label bought or sent back, as the garment's size chart "
        "spells it",
    )
    return_reason: ReturnReason | None = Field(
        None, description="Only on return: too_small, too_large or other (the size is not blamed)"
    )
    body_id: str | None = Field(
        None, min_length=1, max_length=MAX_ID_LENGTH, description="The shopper's body (BodyService), when known"
    )

    @model_validator(mode="after")
    def _order_fields_only_on_orders(self) -> Interaction:
        if self.session_id is not None and self.type in ("like", "dislike"):
            raise ValueError(
                f"session_id is not given on a {self.type}: it is recorded as a purchase or a return, not an order"
            )
        if self.size is not None and self.type not in ("purchase", "return"):
            raise ValueError(f"size is given only on a purchase or a return, not on {self.type}")
        if self.return_reason is not None and self.type != "return":
            raise ValueError(f"return_reason is given only on a return, not on {self.type}")
        return self


class RecordInteractions(BaseModel):
    """Interactions of one shopper, in the order they happened."""

    interactions: list[Interaction] = Field(min_length=1, max_length=1000)


class RecordedInteractions(BaseModel):
    """Event ids of the published InteractionRecorded events, in request order."""

    event_ids: list[str]


class DeletedShopper(BaseModel):
    """What delete-my-data removed."""

    user_id: str
    user_event_id: str = Field(description="Id of the published UserDeleted event")
    body_id: str | None = Field(description="The deleted body, when one was named")


class Health(BaseModel):
    """Liveness or readiness, with each service's health for readiness."""

    status: Literal["ok", "unavailable"]
    services: dict[str, bool] = Field(default_factory=dict)
