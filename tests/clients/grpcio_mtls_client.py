"""Calls demo.users.v1.UserService/GetUser through the gateway over TLS with a client
certificate, using Python's grpcio (a C-core gRPC client, independent of the Rust stack).

Usage: grpcio_mtls_client.py HOST:PORT CA_PEM CERT_PEM KEY_PEM
Prints the status code name, then the response's size in bytes (or the status message).
"""

import sys

import grpc


def main() -> None:
    address, ca, cert, key = sys.argv[1:5]
    read = lambda path: open(path, "rb").read()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)
    )
    options = (("grpc.ssl_target_name_override", "localhost"),)
    with grpc.secure_channel(address, credentials, options=options) as channel:
        get_user = channel.unary_unary("/demo.users.v1.UserService/GetUser")
        try:
            # GetUserRequest { id: 3 }
            response = get_user(b"\x08\x03", timeout=10)
            print("OK")
            print(len(response))
        except grpc.RpcError as error:
            print(error.code().name)
            print(error.details())


if __name__ == "__main__":
    main()
