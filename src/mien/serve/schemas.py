"""JSON shapes of the service's answers (pydantic models: they also document the OpenAPI spec)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class FaceOut(BaseModel):
    face_index: int = Field(description="position of the face in the image (detector order)")
    box: list[float] = Field(description="[x0, y0, x1, y1] in pixels of the uploaded image", min_length=4,
                             max_length=4)
    score: float = Field(description="detector confidence (1.0 without detection)")
    landmarks: list[list[float]] | None = Field(description="[[x, y], ...] pixels; rows 0 and 1 are the eyes")
    probs: dict[str, float] = Field(description="class name -> probability (they sum to 1)")
    emotion: str = Field(description="the most probable class")
    confidence: float = Field(description="the probability of `emotion`")


class ImageInfo(BaseModel):
    width: int = Field(description="the uploaded image's width in pixels (after EXIF rotation)")
    height: int
    downscaled: bool = Field(description="true when the image had more pixels than the service's limit "
                                         "and detection ran on a smaller copy (boxes are still in original pixels)")


class PredictResponse(BaseModel):
    model: str
    image: ImageInfo
    faces: list[FaceOut]
    time_ms: float = Field(description="time the service spent on this request")


class BatchItem(BaseModel):
    index: int = Field(description="position of the file in the request")
    filename: str | None = Field(description="the client's name for the file (echoed, never used as a path)")
    status: int = Field(description="200, or the HTTP status this image alone would have got")
    error: str | None = None
    image: ImageInfo | None = None
    faces: list[FaceOut] = []


class BatchResponse(BaseModel):
    model: str
    results: list[BatchItem]
    time_ms: float


class ShippedModelOut(BaseModel):
    name: str
    kind: Literal["model", "ensemble"]
    architecture: str = Field(description="registered architecture and its arguments, or 'mean of A + B'")
    members: list[str]
    params: int
    size_mb: float
    tta: str = Field(description="the test-time augmentation the model runs with (chosen on PublicTest)")
    val_accuracy: float | None = Field(description="PublicTest accuracy stated by the model card, 0-1")
    test_accuracy: float | None = Field(description="PrivateTest accuracy stated by the model card, 0-1")
    test_macro_f1: float | None


class ModelsResponse(BaseModel):
    active: str = Field(description="the model every request uses (chosen when the service starts)")
    backend: str | None
    detector: str | None
    class_names: list[str]
    shipped: list[str] = Field(description="models shipped with mien (start `mien serve --model NAME` to use one)")
    ensembles: list[str] = Field(default_factory=list,
                                 description="shipped ensembles, averaging several shipped models (`--model NAME`)")
    catalog: list[ShippedModelOut] = Field(default_factory=list,
                                           description="every shipped model and ensemble, as `mien models` lists them")


class Health(BaseModel):
    status: Literal["ok"]
    model: str
    pending: int = Field(description="requests admitted and not yet answered")


class ErrorOut(BaseModel):
    detail: str = Field(description="what went wrong, in plain words")
