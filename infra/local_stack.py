"""Create the StoreLens AWS resources in a local moto server ("live mode without an account").

Start a server, create the resources, and print the environment for the dashboard::

    moto_server -H 127.0.0.1 -p 5000 &          # moto[server], in requirements-test.txt
    python infra/local_stack.py --endpoint http://127.0.0.1:5000 \
        --admin-password 'Storelens-admin-1' --out .env.aws-local
    set -a; . ./.env.aws-local; set +a
    streamlit run app.py

What is created mirrors ``infra/template.yaml``: the crops bucket (private,
SSE, lifecycle), every DynamoDB table (GSIs, TTL), a verified SES sender, the
approval state machine from ``infra/statemachine/approval.asl.json`` and a
Cognito user pool with an app client. moto has no Rekognition collections, so
the printed environment selects the embedded face index for that one port
(``STORELENS_REKOGNITION_ENDPOINT_URL=local``), and the Step Functions workflow
drives its steps in-process because moto cannot run the stack's Lambdas.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ASL = ROOT / "infra" / "statemachine" / "approval.asl.json"
FUNCTIONS = ("NotifyFunctionArn", "RecordDecisionFunctionArn", "ExpireFunctionArn")


@dataclass(frozen=True)
class LocalStack:
    """What was created, and the ``STORELENS_*`` environment that points at it."""

    endpoint: str
    region: str
    bucket: str
    table_prefix: str
    state_machine_arn: str
    sender: str
    user_pool_id: str
    client_id: str
    public_url: str = "http://localhost:8501"

    def environment(self) -> dict[str, str]:
        return {
            "STORELENS_BACKEND": "aws",
            "STORELENS_AWS_REGION": self.region,
            "STORELENS_AWS_ENDPOINT_URL": self.endpoint,
            "STORELENS_REKOGNITION_ENDPOINT_URL": "local",
            "STORELENS_S3_BUCKET": self.bucket,
            "STORELENS_DYNAMODB_TABLE_PREFIX": self.table_prefix,
            "STORELENS_STATE_MACHINE_ARN": self.state_machine_arn,
            "STORELENS_SES_SENDER": self.sender,
            "STORELENS_COGNITO_USER_POOL_ID": self.user_pool_id,
            "STORELENS_COGNITO_CLIENT_ID": self.client_id,
            # Approval links in the mails open the dashboard (streamlit's default port).
            "STORELENS_PUBLIC_URL": self.public_url,
            # moto accepts any credentials; these keep boto3 from looking for real ones.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
        }


def _session(region: str) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )


def create(
    endpoint: str,
    *,
    region: str = "eu-west-1",
    bucket: str = "storelens-crops",
    table_prefix: str = "storelens",
    sender: str = "storelens@storelens.local",
    stack_name: str = "storelens",
    admin: tuple[str, str] | None = None,
) -> LocalStack:
    """Create (or reuse) every resource on the server at ``endpoint``.

    ``admin`` (user name, password) creates a dashboard user in the pool's
    ``admin`` group, for signing in to the dashboard in live mode.
    """
    from botocore.exceptions import ClientError

    from core.aws.dynamodb import DynamoDbRepositories
    from core.aws.s3 import S3BlobStore

    session = _session(region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint)

    S3BlobStore(bucket=bucket, client=client("s3")).ensure_bucket(region)
    DynamoDbRepositories(prefix=table_prefix, client=client("dynamodb")).create_tables()
    client("ses").verify_email_identity(EmailAddress=sender)

    iam = client("iam")
    role_name = f"{stack_name}-approval-role"
    try:
        role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    except ClientError:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"Service": "states.amazonaws.com"},
                }
            ],
        }
        role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))
        role_arn = role["Role"]["Arn"]
    account = role_arn.split(":")[4]
    definition = ASL.read_text()
    for name in FUNCTIONS:
        # No Lambdas run in moto; the ARNs only need to be well formed.
        fn = name.removesuffix("FunctionArn").lower()
        definition = definition.replace(
            "${" + name + "}", f"arn:aws:lambda:{region}:{account}:function:{stack_name}-{fn}"
        )
    sfn = client("stepfunctions")
    machine_name = f"{stack_name}-approval"
    existing = [
        m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == machine_name
    ]
    machine_arn = (
        existing[0]
        if existing
        else sfn.create_state_machine(name=machine_name, definition=definition, roleArn=role_arn)[
            "stateMachineArn"
        ]
    )

    idp = client("cognito-idp")
    pool_name = f"{stack_name}-approvers"
    pools = [p["Id"] for p in idp.list_user_pools(MaxResults=60)["UserPools"] if p["Name"] == pool_name]
    pool_id = pools[0] if pools else idp.create_user_pool(PoolName=pool_name)["UserPool"]["Id"]
    clients = idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    client_id = (
        clients[0]["ClientId"]
        if clients
        else idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=f"{stack_name}-dashboard",
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
    )
    if admin is not None:
        _ensure_admin(idp, pool_id, *admin)
    return LocalStack(
        endpoint=endpoint,
        region=region,
        bucket=bucket,
        table_prefix=table_prefix,
        state_machine_arn=machine_arn,
        sender=sender,
        user_pool_id=pool_id,
        client_id=client_id,
    )


def _ensure_admin(idp: Any, pool_id: str, username: str, password: str) -> None:
    from botocore.exceptions import ClientError

    try:
        idp.create_group(UserPoolId=pool_id, GroupName="admin")
    except ClientError as exc:
        if "GroupExists" not in str(exc):
            raise
    try:
        idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
    except ClientError as exc:
        if "UsernameExists" not in str(exc):
            raise
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName="admin")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="http://127.0.0.1:5000", help="moto server URL")
    parser.add_argument("--region", default="eu-west-1")
    parser.add_argument("--bucket", default="storelens-crops")
    parser.add_argument("--table-prefix", default="storelens")
    parser.add_argument("--sender", default="storelens@storelens.local")
    parser.add_argument("--admin-user", default="admin", help="dashboard admin in the Cognito pool")
    parser.add_argument(
        "--admin-password", default="", help="create the admin user with this password (omit to skip)"
    )
    parser.add_argument("--public-url", default="http://localhost:8501", help="base URL of mail links")
    parser.add_argument(
        "--out", type=Path, help="write the environment to this file (only on success) instead of stdout"
    )
    args = parser.parse_args(argv)
    admin = (args.admin_user, args.admin_password) if args.admin_password else None
    try:
        stack = create(
            args.endpoint,
            region=args.region,
            bucket=args.bucket,
            table_prefix=args.table_prefix,
            sender=args.sender,
            admin=admin,
        )
    except Exception as exc:  # any failure: say what, exit non-zero, write nothing
        print(f"local_stack: could not create the stack at {args.endpoint}: {_explain(exc)}", file=sys.stderr)
        if args.out is not None and args.out.exists() and args.out.stat().st_size == 0:
            args.out.unlink()  # never leave an empty env file that silently selects the local backend
        return 2
    stack = dataclasses.replace(stack, public_url=args.public_url)
    text = "".join(f"{key}={value}\n" for key, value in stack.environment().items())
    if args.out is None:
        sys.stdout.write(text)
    else:
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _explain(exc: Exception) -> str:
    """A one-line reason with the likely fix."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if code == "InvalidPasswordException":
        return (
            f"{exc}. The pool's default policy wants 8+ characters with upper- and lower-case "
            "letters, a digit and a symbol, e.g. --admin-password 'Storelens-admin-1'"
        )
    if "Could not connect" in str(exc) or "Connection refused" in str(exc):
        return f"{exc}. Is the moto server running (moto_server -H 127.0.0.1 -p 5000, from moto[server])?"
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
