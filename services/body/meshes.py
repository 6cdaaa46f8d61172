"""The fitted meshes of stored bodies: the mesh model loaded in the background, meshes kept in a bounded LRU.

Loading the mesh model takes about a second from its cache (``mesh.ShapeSpace``); building that
cache from Anny on a machine's first use takes about a minute. Neither may hold up a service's
start or its other calls, so the model loads in a background thread: started at once when the
cache is present, else on the first mesh request. Until it is ready a mesh request answers
Unavailable (a caller retries); the silhouette falls back to the drawing from measurements.
A fitted mesh is kept per body id (at most ``capacity``) and dropped when the body is deleted.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

from tryon.services.body.mesh import CACHE_FILE, BodyMesh, MeshModel
from tryon.shared.errors import Unavailable

logger = logging.getLogger("tryon.services.body")

DEFAULT_CAPACITY = 256
"""Fitted meshes kept at once (about 170 kB of vertices each)."""
LOADING_MESSAGE = "body mesh model loading; retry in a few seconds"


class BodyMeshes:
    """Fits and keeps the meshes of bodies; thread-safe."""

    def __init__(
        self,
        cache_dir: Path,
        capacity: int = DEFAULT_CAPACITY,
        loader: Callable[[Path], MeshModel] = MeshModel.load,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.capacity = capacity
        self._loader = loader
        self._model: MeshModel | None = None
        self._failure: str | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._meshes: OrderedDict[str, BodyMesh] = OrderedDict()

    @classmethod
    def ready(cls, model: MeshModel, capacity: int = DEFAULT_CAPACITY) -> BodyMeshes:
        """Meshes from a model already loaded (tests, tools)."""
        meshes = cls(Path("."), capacity)
        meshes._model = model
        return meshes

    def start_if_cached(self) -> None:
        """Start loading now when the cache is there (a second); else wait for the first mesh request."""
        if (self.cache_dir / CACHE_FILE).exists():
            self.start()

    def start(self) -> None:
        """Start loading the model in a background thread, once."""
        with self._lock:
            if self._thread is not None or self._model is not None:
                return
            self._thread = threading.Thread(target=self._load, name="body-mesh-loader", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        try:
            model = self._loader(self.cache_dir)
        except Exception as error:  # noqa: BLE001 - any failure is logged and retried by the next request
            logger.exception("body mesh model failed to load")
            with self._lock:
                self._failure, self._thread = str(error), None
            return
        with self._lock:
            self._model, self._failure = model, None

    @property
    def model(self) -> MeshModel | None:
        """The loaded model, or None while it loads."""
        return self._model

    def wait(self, timeout: float | None = None) -> MeshModel | None:
        """Block until the model is loaded (or ``timeout`` seconds pass); the model or None."""
        self.start()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._model

    def mesh(self, body_id: str, measurements_mm: Mapping[str, float], sex: str | None) -> BodyMesh:
        """The body's fitted mesh (kept for the next call), or Unavailable while the model loads."""
        with self._lock:
            if body_id in self._meshes:
                self._meshes.move_to_end(body_id)
                return self._meshes[body_id]
        model = self._model
        if model is None:
            self.start()
            raise Unavailable(LOADING_MESSAGE)
        fitted = model.fit(measurements_mm, sex)
        with self._lock:
            self._meshes[body_id] = fitted
            while len(self._meshes) > self.capacity:
                self._meshes.popitem(last=False)
        return fitted

    def cached(self, body_id: str) -> bool:
        """Whether a mesh of this body is kept."""
        with self._lock:
            return body_id in self._meshes

    def forget(self, body_id: str) -> None:
        """Drop the body's mesh (its body was deleted)."""
        with self._lock:
            self._meshes.pop(body_id, None)
