"""BodyService when its outbox refuses events: the body write and its event succeed or fail together.

The outbox is the real SQLite one, full (it holds its one allowed record, and no broker answers
to drain it), behind the real EventPublisher and KafkaBodyEvents; the server is a real
in-process gRPC server on port 0.
"""

from __future__ import annotations

import grpc
import pytest

from tryon.services.body.domain import BodyDomain
from tryon.services.body.events import KafkaBodyEvents
from tryon.services.body.servicer import BodyServicer, registration
from tryon.services.body.store import BodyStore
from tryon.shared.broker import free_loopback_port
from tryon.shared.events import EventPublisher, new_event_id, record_of
from tryon.shared.outbox import Outbox
from tryon.shared.proto import body_service_pb2 as pb
from tryon.shared.proto import body_service_pb2_grpc, common_pb2, events_pb2
from tryon.shared.server import serve
from tryon.shared.settings import ServerSettings


@pytest.fixture
def service(trained_body_model, tmp_path):
    # Nothing listens on this port, and the publisher is not started: what the outbox holds stays.
    outbox = Outbox(tmp_path / "outbox.sqlite", max_pending=1)
    publisher = EventPublisher(f"127.0.0.1:{free_loopback_port()}", "body-test", outbox, ack_wait_s=0)
    store = BodyStore(tmp_path / "bodies")
    servicer = BodyServicer(BodyDomain(trained_body_model, store, KafkaBodyEvents(publisher), advice_samples=100))
    running = serve("body", [registration(servicer)],
                    ServerSettings(port=0, max_workers=2))
    channel = grpc.insecure_channel(running.address)
    yield body_service_pb2_grpc.BodyServiceStub(channel), store, outbox
    channel.close()
    running.stop(grace=0)
    outbox.close()


def fill(outbox: Outbox) -> None:
    outbox.append([record_of(events_pb2.UserDeleted(event_id=new_event_id(), user_id="filler"), "filler")])


def empty(outbox: Outbox) -> None:
    outbox.remove([record.seq for record in outbox.oldest(outbox.max_pending)])


CREATE = pb.CreateBodyRequest(
    measurements=[
        common_pb2.MeasurementValue(name="stature", value=1700.0),
        common_pb2.MeasurementValue(name="weight", value=70.0),
    ],
    sex=common_pb2.SEX_FEMALE,
)


def test_a_refused_body_updated_leaves_no_body_behind(service):
    stub, store, outbox = service
    fill(outbox)
    with pytest.raises(grpc.RpcError) as refused:
        stub.CreateBody(CREATE)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(store) == 0
    assert list(store.directory.iterdir()) == []

    empty(outbox)
    body = stub.CreateBody(CREATE).body
    assert len(store) == 1
    assert [events_pb2.BodyUpdated.FromString(r.value).body_id for r in outbox.oldest(1)] == [body.body_id]


def test_a_refused_body_deleted_keeps_the_body_for_the_retry(service):
    stub, store, outbox = service
    body = stub.CreateBody(CREATE).body
    assert len(outbox) == 1
    with pytest.raises(grpc.RpcError) as refused:
        stub.DeleteBody(pb.DeleteBodyRequest(body_id=body.body_id))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert stub.GetBody(pb.GetBodyRequest(body_id=body.body_id)).body.body_id == body.body_id

    empty(outbox)
    assert stub.DeleteBody(pb.DeleteBodyRequest(body_id=body.body_id)).body_id == body.body_id
    assert len(store) == 0
    assert [events_pb2.BodyDeleted.FromString(r.value).body_id for r in outbox.oldest(1)] == [body.body_id]
