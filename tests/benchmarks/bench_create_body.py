"""CreateBody throughput and latency on loopback, divided by the health Check of the same server.

Run: ``python tests/benchmarks/bench_create_body.py [--requests N] [--time-cap S] [--concurrency 1 4]``

The body service runs as its own process (``python -m tryon.services.body`` through the suite
launcher, with an embedded broker unless ``KAFKA_BOOTSTRAP_SERVERS`` is set), so client and
server do not share a GIL. Its model is loaded from ``<data-dir>/body/model``; when missing,
the service trains one for ``--train-epochs`` epochs on start (saved for the next run).
A CreateBody does the CVAE inference, the latent code, an fsync'ed file write and a Kafka
publish. For each concurrency the table shows the health Check of the same server (the
reference), CreateBody with three measurements, then GetBody and AdviseSize on created bodies:
once drawing a body's posterior samples, once reusing the samples kept from an earlier call.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import health_baseline, measure_unary, print_report, require_loopback  # noqa: E402

import grpc  # noqa: E402

from tryon.services.body.domain import CACHED_SAMPLE_SETS  # noqa: E402
from tryon.shared.launcher import LocalSuite  # noqa: E402
from tryon.shared.proto import body_service_pb2 as pb  # noqa: E402
from tryon.shared.proto import body_service_pb2_grpc, common_pb2  # noqa: E402
from tryon.shared.results import add_results_option, recording_stdout  # noqa: E402


UNCACHED_BODIES = 2 * CACHED_SAMPLE_SETS


def create_request(index: int) -> pb.CreateBodyRequest:
    """A plausible, slightly different body per call."""
    return pb.CreateBodyRequest(
        measurements=[
            common_pb2.MeasurementValue(name="stature", value=1600.0 + index % 300),
            common_pb2.MeasurementValue(name="weight", value=55.0 + index % 40),
            common_pb2.MeasurementValue(name="chest_circumference", value=850.0 + index % 250),
        ],
        sex=common_pb2.SEX_FEMALE if index % 2 else common_pb2.SEX_MALE,
    )


def main() -> None:
    """Start the service, measure each row and print one table per concurrency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="calls per row at most")
    parser.add_argument("--time-cap", type=float, default=10.0, help="seconds per row at most")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="client threads")
    parser.add_argument("--data-dir", type=Path, default=Path("var/bench-body"), help="suite data folder")
    parser.add_argument("--train-epochs", type=int, default=30, help="epochs if the model must be trained")
    add_results_option(parser)
    arguments = parser.parse_args()
    with recording_stdout(arguments.results, "bench_create_body", "CreateBody, GetBody and AdviseSize against the health Check"):
        extra_env = {"TRYON_BODY_TRAIN_EPOCHS": str(arguments.train_epochs), "TRYON_BODY_LOG_LEVEL": "WARNING"}
        started = time.perf_counter()
        with LocalSuite(arguments.data_dir, services=("body",), extra_env=extra_env, startup_timeout_s=1800) as suite:
            address = suite.address("body")
            require_loopback(address)
            print(f"body service SERVING after {time.perf_counter() - started:.1f} s", flush=True)
            with grpc.insecure_channel(address) as channel:
                stub = body_service_pb2_grpc.BodyServiceStub(channel)
                counter = itertools.count()
                created = [stub.CreateBody(create_request(i)).body.body_id for i in range(50 + UNCACHED_BODIES)]
                get_requests = itertools.cycle([pb.GetBodyRequest(body_id=body_id) for body_id in created[:50]])
                chart = common_pb2.SizeChart(chart_id="us_mens_trousers")
                cached_advice = itertools.cycle(
                    [pb.AdviseSizeRequest(body_id=body_id, size_chart=chart) for body_id in created[:50]]
                )
                # Cycling over more bodies than the service keeps samples for: every call draws afresh.
                fresh_advice = itertools.cycle(
                    [pb.AdviseSizeRequest(body_id=body_id, size_chart=chart) for body_id in created[50:]]
                )
                for concurrency in arguments.concurrency:
                    results = {
                        "health Check": health_baseline(address, arguments.requests, concurrency, arguments.time_cap),
                        "CreateBody (3 measurements)": measure_unary(
                            lambda: stub.CreateBody(create_request(next(counter)), timeout=30),
                            arguments.requests, concurrency, arguments.time_cap,
                        ),
                        "GetBody": measure_unary(
                            lambda: stub.GetBody(next(get_requests), timeout=30),
                            arguments.requests, concurrency, arguments.time_cap,
                        ),
                        "AdviseSize, samples drawn (2000)": measure_unary(
                            lambda: stub.AdviseSize(next(fresh_advice), timeout=30),
                            arguments.requests, concurrency, arguments.time_cap,
                        ),
                        "AdviseSize, samples kept from a previous call": measure_unary(
                            lambda: stub.AdviseSize(next(cached_advice), timeout=30),
                            arguments.requests, concurrency, arguments.time_cap,
                        ),
                    }
                    print_report(results, "health Check", concurrency, arguments.requests, arguments.time_cap)
            statuses = suite.stop()
        print(f"\nservice exit status after SIGTERM: {statuses['body']}")


if __name__ == "__main__":
    main()
