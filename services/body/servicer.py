"""BodyService over gRPC: protobuf in, domain call, protobuf out.

Domain errors propagate as exceptions; the shared error-mapping interceptor turns them into
INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION. Until start-up attaches the domain (the body
model loaded, or trained on first start) every call answers UNAVAILABLE, as in every service
(`tryon.shared.server.ReadyServicer`), and health says NOT_SERVING.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.timestamp_pb2 import Timestamp

from tryon.services.body.domain import BodyDomain
from tryon.services.body.measurements import BY_NAME, NAMES
from tryon.services.body.mesh import mesh_glb
from tryon.services.body.sizing import Size, SizeRange
from tryon.services.body.store import BodyRecord
from tryon.shared.contract import SEX_TO_PROTO, sex_from_proto
from tryon.shared.errors import InvalidArgument
from tryon.shared.proto import body_service_pb2, body_service_pb2_grpc, common_pb2
from tryon.shared.server import ReadyServicer, ServiceRegistration

SERVICE_FULL_NAME = body_service_pb2.DESCRIPTOR.services_by_name["BodyService"].full_name
GENERATOR_FROM_PROTO = {
    common_pb2.GENERATOR_UNSPECIFIED: "vae",
    common_pb2.GENERATOR_VAE: "vae",
    common_pb2.GENERATOR_GAN: "gan",
}


def body_to_proto(record: BodyRecord) -> body_service_pb2.Body:
    """A stored body as a Body message."""
    created = Timestamp()
    created.FromDatetime(record.created_at)
    return body_service_pb2.Body(
        body_id=record.body_id,
        sex=SEX_TO_PROTO[record.sex],
        measurements=[
            common_pb2.MeasurementEstimate(
                name=e.name, unit=e.unit, value=e.value, stddev=e.stddev,
                lower_90=e.lower_90, upper_90=e.upper_90, observed=e.observed,
            )
            for e in record.estimates
        ],
        create_time=created,
    )


class BodyServicer(ReadyServicer[BodyDomain], body_service_pb2_grpc.BodyServiceServicer):
    """Thin adapter from the BodyService contract to the attached `BodyDomain`."""

    def CreateBody(self, request, context):  # noqa: N802 - gRPC method name
        """Create a body from a few measurements."""
        measurements = [(value.name, value.value) for value in request.measurements]
        record = self.domain.create_body(measurements, sex_from_proto(request.sex))
        return body_service_pb2.CreateBodyResponse(body=body_to_proto(record))

    def GetBody(self, request, context):  # noqa: N802
        """Return a stored body."""
        return body_service_pb2.GetBodyResponse(body=body_to_proto(self.domain.get_body(request.body_id)))

    def DeleteBody(self, request, context):  # noqa: N802
        """Delete a body and publish BodyDeleted."""
        return body_service_pb2.DeleteBodyResponse(body_id=self.domain.delete_body(request.body_id))

    def SampleBodies(self, request, context) -> Iterator[body_service_pb2.SampleBodiesResponse]:  # noqa: N802
        """Stream sampled bodies; each measurement is one draw (stddev 0, not observed)."""
        if request.generator not in GENERATOR_FROM_PROTO:
            raise InvalidArgument(
                f"generator must be GENERATOR_UNSPECIFIED, GENERATOR_VAE or GENERATOR_GAN; got {request.generator}"
            )
        bodies = self.domain.sample_bodies(
            request.count, request.seed, sex_from_proto(request.sex), GENERATOR_FROM_PROTO[request.generator]
        )
        for index, body in enumerate(bodies):
            if not context.is_active():
                return
            yield body_service_pb2.SampleBodiesResponse(
                index=index,
                body=body_service_pb2.Body(
                    sex=SEX_TO_PROTO[body.sex],
                    measurements=[
                        common_pb2.MeasurementEstimate(
                            name=name, unit=BY_NAME[name].unit, value=body.values[name],
                            stddev=0.0, lower_90=body.values[name], upper_90=body.values[name], observed=False,
                        )
                        for name in NAMES
                    ],
                ),
            )

    def AdviseSize(self, request, context):  # noqa: N802
        """Advise a size from a shipped or inline size chart."""
        sizes = tuple(
            Size(
                label=size.label,
                ranges=tuple(SizeRange(r.measurement, r.min, r.max) for r in size.ranges),
            )
            for size in request.size_chart.sizes
        )
        advice = self.domain.advise_size(request.body_id, request.size_chart.chart_id, sizes)
        return body_service_pb2.AdviseSizeResponse(
            recommended_size=advice.recommended_size,
            fits=[body_service_pb2.SizeFit(label=fit.label, probability=fit.probability) for fit in advice.fits],
            deciding_measurement=advice.deciding_measurement,
            explanation=advice.explanation,
            between_sizes=advice.between_sizes,
            pulls=[body_service_pb2.MeasurementPull(measurement=p.measurement, size=p.size) for p in advice.pulls],
        )

    def RenderSilhouette(self, request, context):  # noqa: N802
        """Render a front-view silhouette PNG with keypoints."""
        silhouette = self.domain.render_silhouette(request.body_id, request.width, request.height)
        return body_service_pb2.RenderSilhouetteResponse(
            png=silhouette.png,
            keypoints=[common_pb2.Keypoint(name=name, x=x, y=y) for name, (x, y) in silhouette.keypoints.items()],
            mm_per_pixel=silhouette.mm_per_pixel,
        )

    def GetBodyMesh(self, request, context):  # noqa: N802
        """Return the body's fitted mesh as GLB with its keypoints and measured dimensions."""
        mesh = self.domain.get_body_mesh(request.body_id)
        return body_service_pb2.GetBodyMeshResponse(
            glb=mesh_glb(mesh),
            keypoints=[
                common_pb2.Keypoint3D(name=name, x_mm=float(p[0]), y_mm=float(p[1]), z_mm=float(p[2]))
                for name, p in mesh.keypoints_mm.items()
            ],
            mesh_measurements=[common_pb2.MeasurementValue(name=n, value=v) for n, v in mesh.measured_mm.items()],
            vertex_count=len(mesh.vertices_mm),
            triangle_count=len(mesh.faces),
        )


def registration(servicer: BodyServicer) -> ServiceRegistration:
    """What `tryon.shared.server.serve` needs to host ``servicer`` as tryon.v1.BodyService."""
    return ServiceRegistration(
        SERVICE_FULL_NAME, lambda server: body_service_pb2_grpc.add_BodyServiceServicer_to_server(servicer, server)
    )
