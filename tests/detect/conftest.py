"""The S3-compatible server double (moto's server mode) and fake AWS credentials, as fixtures."""

from tests.doubles.s3_server import aws_credentials, s3_server

__all__ = ["aws_credentials", "s3_server"]
