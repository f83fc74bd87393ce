"""A standard, non-Rust gRPC client against a Mosaic gateway: Python grpcio.

It knows nothing of the demo protos in advance. It discovers the services through server
reflection (grpcio's reflection client speaks only v1alpha), builds the message classes from the
descriptors it receives, and then calls a unary method, a server-streaming method and the health
service, checking what comes back. Exits non-zero with a message on the first mismatch.

Usage: python3 grpcio_reflection_client.py HOST:PORT
"""

import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def message_class(pool, name):
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def main():
    target = sys.argv[1]
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=10)

    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    expected = {
        "demo.users.v1.UserService",
        "demo.catalog.v1.CatalogService",
        "demo.reviews.v1.ReviewService",
        "demo.inventory.v1.InventoryService",
        "demo.storefront.v1.Storefront",
        "grpc.health.v1.Health",
    }
    if not expected <= services:
        fail(f"reflection lists {sorted(services)}, missing {sorted(expected - services)}")

    pool = descriptor_pool.DescriptorPool(database)
    method = pool.FindServiceByName("demo.users.v1.UserService").FindMethodByName("GetUser")
    request_class = message_class(pool, method.input_type.full_name)
    response_class = message_class(pool, method.output_type.full_name)

    get_user = channel.unary_unary(
        "/demo.users.v1.UserService/GetUser",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    response = get_user(request_class(id=42), timeout=5)
    if response.user.id != 42 or not response.user.display_name:
        fail(f"GetUser(42) answered {response}")

    try:
        get_user(request_class(id=987654), timeout=5)
        fail("GetUser(987654) should be NOT_FOUND")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND or "987654" not in error.details():
            fail(f"GetUser(987654) gave {error.code()} {error.details()!r}")

    stream_request = message_class(pool, "demo.reviews.v1.StreamReviewsRequest")
    review = message_class(pool, "demo.reviews.v1.Review")
    stream_reviews = channel.unary_stream(
        "/demo.reviews.v1.ReviewService/StreamReviews",
        request_serializer=stream_request.SerializeToString,
        response_deserializer=review.FromString,
    )
    reviews = list(stream_reviews(stream_request(product_id=7), timeout=5))
    if not reviews or any(r.product_id != 7 for r in reviews):
        fail(f"StreamReviews(7) gave {len(reviews)} reviews")

    # The composed edge API, discovered and called like any other service.
    page_method = pool.FindServiceByName("demo.storefront.v1.Storefront").FindMethodByName(
        "GetProductPage"
    )
    page_request = message_class(pool, page_method.input_type.full_name)
    page_class = message_class(pool, page_method.output_type.full_name)
    get_page = channel.unary_unary(
        "/demo.storefront.v1.Storefront/GetProductPage",
        request_serializer=page_request.SerializeToString,
        response_deserializer=page_class.FromString,
    )
    page = get_page(page_request(product_id=7, review_limit=2), timeout=5)
    if page.product.id != 7 or len(page.reviews) != 2 or not page.reviews[0].author_name:
        fail(f"GetProductPage(7) answered {page}")

    health = health_pb2_grpc.HealthStub(channel)
    status = health.Check(
        health_pb2.HealthCheckRequest(service="demo.users.v1.UserService"), timeout=5
    ).status
    if status != health_pb2.HealthCheckResponse.SERVING:
        fail(f"health of demo.users.v1.UserService is {status}")

    print(
        f"ok: {len(services)} services discovered by reflection; GetUser, NOT_FOUND, "
        f"StreamReviews ({len(reviews)} messages), the composed GetProductPage and health "
        f"all as expected"
    )


if __name__ == "__main__":
    main()
