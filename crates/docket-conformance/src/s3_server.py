"""A real S3-compatible server on loopback for docket's object-storage tests.

Usage: python3 s3_server.py [BUCKET ...]

Starts moto's S3 server (the PyPI package moto[server]) on 127.0.0.1, on a
free port, creates each BUCKET, and prints "LISTENING <port>" once it
accepts requests. It keeps objects in memory, accepts any credentials and
contacts nothing else. Exits when its stdin is closed, so it never outlives
the test that started it.
"""

import sys

try:
    import boto3
    from moto.server import ThreadedMotoServer
except ImportError:
    print(
        "s3_server.py: the Python package moto[server] is missing; "
        "install it with `pip install 'moto[server]'`",
        file=sys.stderr,
    )
    sys.exit(3)


def main():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="docket-test",
        aws_secret_access_key="docket-test-secret",
    )
    for bucket in sys.argv[1:]:
        client.create_bucket(Bucket=bucket)
    print(f"LISTENING {port}", flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
