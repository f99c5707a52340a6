"""The ``storelens`` command line (also ``python -m core``).

Human-readable output by default, ``--json`` for scripts. Errors go to stderr
as one line, ``storelens: error: ...``, with an exit code from the error's
family (65 bad input, 66 not found, 69 backend unavailable, 75 conflict,
77 token/auth, 78 configuration). ``compare`` exits 0 for the same person and
1 for different people, like ``cmp``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from core.errors import StoreLensError, ValidationError

Handler = Callable[[argparse.Namespace], int]


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return None
    return value


def _emit(args: argparse.Namespace, data: Any, human: Callable[[], None]) -> None:
    if args.json:
        print(json.dumps(_jsonable(data), indent=2, sort_keys=True))
    else:
        human()


def _services(args: argparse.Namespace) -> Any:
    from core.bootstrap import build_services
    from core.settings import Settings

    overrides: dict[str, Any] = {"data_dir": Path(args.data_dir)} if args.data_dir else {}
    return build_services(Settings.from_env(**overrides))


def _read(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise ValidationError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ValidationError(f"{path}: is a directory") from exc


# ------------------------------------------------------------------ commands


def cmd_enroll(args: argparse.Namespace) -> int:
    services = _services(args)
    customer = services.customers.enroll(
        args.name,
        [_read(p) for p in args.images],
        email=args.email,
        loyalty_id=args.loyalty_id,
        consent=True,
        notes=args.notes or "",
        actor=args.actor,
        labels=args.images,
    )
    _emit(
        args,
        customer,
        lambda: print(f"enrolled {customer.name} as {customer.customer_id} from {len(args.images)} photo(s)"),
    )
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    services = _services(args)
    report = []
    for path in args.images:
        faces = services.customers.identify(_read(path))
        report.append(
            {
                "image": path,
                "faces": [
                    {
                        "bbox": f.bbox.to_dict(),
                        "customer_id": f.customer_id,
                        "name": f.name,
                        "similarity": None if f.similarity is None else round(f.similarity, 4),
                        "distance": f.distance,
                        "band": f.band.value,
                    }
                    for f in faces
                ],
            }
        )

    def human() -> None:
        for item in report:
            print(f"{item['image']}: {len(item['faces'])} face(s)")
            for face in item["faces"]:
                b = face["bbox"]
                who = f"{face['name']} ({face['customer_id']})" if face["customer_id"] else "unknown"
                dist = "-" if face["distance"] is None else f"{face['distance']:.3f}"
                print(
                    f"  [{b['left']},{b['top']} {b['width']}x{b['height']}] {who}"
                    f"  distance={dist}  band={face['band']}"
                )

    _emit(args, report, human)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    services = _services(args)
    distance, same = services.customers.compare(_read(args.image_a), _read(args.image_b))
    data = {"distance": round(distance, 4), "same_person": same}
    _emit(
        args, data, lambda: print(f"distance={distance:.3f}  {'same person' if same else 'different people'}")
    )
    return 0 if same else 1


def cmd_ingest(args: argparse.Namespace) -> int:
    services = _services(args)
    results, failed = [], 0
    for path in args.events:
        try:
            result = services.ingest.ingest(_read(path), source=f"cli:{path}")
            results.append({"file": path, **_jsonable(result)})
            if not args.json:
                extra = result.customer_id or result.pending_id or ""
                print(f"{path}: {result.outcome.value} {extra}".rstrip())
        except StoreLensError as exc:
            failed += 1
            results.append({"file": path, "error": str(exc), "error_type": type(exc).__name__})
            print(f"storelens: error: {path}: {exc}", file=sys.stderr)
        except Exception as exc:  # one bad file never stops the batch, nor prints a traceback
            failed += 1
            results.append({"file": path, "error": "internal error", "error_type": type(exc).__name__})
            print(f"storelens: error: {path}: internal error ({type(exc).__name__})", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    return 65 if failed else 0


def cmd_approvals_list(args: argparse.Namespace) -> int:
    services = _services(args)
    items = services.approvals.list_pending()

    def human() -> None:
        if not items:
            print("no pending identities")
        for p in items:
            hint = (
                f" possible {p.suggested_customer_id} ({p.suggested_similarity:.2f})"
                if p.suggested_customer_id
                else ""
            )
            print(
                f"{p.pending_id}  {p.kind.value:6}  seen {p.face_count}x"
                f"  last {p.last_seen_at:%Y-%m-%d %H:%M}{hint}"
            )

    _emit(args, items, human)
    return 0


def _decide(args: argparse.Namespace, action: str, **extra: Any) -> int:
    from core.ports import Decision, DecisionAction

    services = _services(args)
    decision = Decision(action=DecisionAction.parse(action), actor=args.actor, **extra)
    if getattr(args, "token", None):
        claimed = services.approvals.signer.verify(args.token).pending_id
        if getattr(args, "pending_id", None) and claimed != args.pending_id:
            # A link for one person must never decide about another.
            raise ValidationError(f"this token was issued for {claimed}, not {args.pending_id}")
        services.approvals.decide_with_token(args.token, decision)
        pending_id = claimed
    else:
        services.approvals.decide(args.pending_id, decision)
        pending_id = args.pending_id
    pending = services.approvals.get(pending_id)
    _emit(
        args,
        pending,
        lambda: print(f"{pending_id}: {pending.status.value} {pending.customer_id or ''}".rstrip()),
    )
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from core.models import CustomerDetails

    details = CustomerDetails(
        name=args.name,
        email=args.email,
        loyalty_id=args.loyalty_id,
        consent=args.consent,
        notes=args.notes or "",
    )
    return _decide(args, "approve", details=details)


def cmd_simple_decision(action: str) -> Handler:
    def run(args: argparse.Namespace) -> int:
        return _decide(args, action)

    return run


def cmd_merge_pending(args: argparse.Namespace) -> int:
    return _decide(args, "merge", customer_id=args.customer_id)


def cmd_customers_list(args: argparse.Namespace) -> int:
    services = _services(args)
    items = services.customers.list(args.search)

    def human() -> None:
        if not items:
            print("no customers")
        for c in items:
            print(f"{c.customer_id}  {c.name}  {c.email or '-'}  loyalty={c.loyalty_id or '-'}")

    _emit(args, items, human)
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    services = _services(args)
    customer = services.customers.get(args.customer_id)
    if not args.yes:
        if not sys.stdin.isatty():
            raise ValidationError("refusing to erase without --yes when not interactive")
        answer = input(f"Erase {customer.name} ({customer.customer_id}) and all their data? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            print("not erased", file=sys.stderr)
            return 1
    report = services.privacy.erase(args.customer_id, actor=args.actor)
    _emit(
        args,
        report,
        lambda: print(
            f"erased {args.customer_id}: {report.crops} crops, {report.index_entries} index entries, "
            f"{report.visits} visits, {report.transactions_unlinked} sales unlinked, {report.mails} mails"
        ),
    )
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    services = _services(args)
    report = services.privacy.purge(actor=args.actor)
    _emit(
        args,
        report,
        lambda: print(
            f"purged {len(report.expired)} expired pending identit(y/ies); "
            f"{len(report.retired)} customer(s) lost photos and templates, "
            f"{len(report.records_deleted)} customer record(s) deleted; "
            f"{report.sightings_rolled_up} anonymous sighting(s) rolled up into hourly counts"
        ),
    )
    return 0


def cmd_edge_gallery(args: argparse.Namespace) -> int:
    services = _services(args)
    if services.gallery is None:
        print(
            "no edge gallery to write: on AWS set STORELENS_EDGE_GALLERY=true; "
            "locally edges read the store directly (docs/edge.md)"
        )
        return 0
    templates = services.gallery.refresh()
    customers = len(set(templates.customer_ids))
    _emit(
        args,
        {"templates": len(templates), "customers": customers},
        lambda: print(f"edge gallery: {len(templates)} template(s) of {customers} consented customer(s)"),
    )
    return 0


def cmd_pos_import(args: argparse.Namespace) -> int:
    from core import pos

    services = _services(args)
    report = pos.import_csv(services, Path(args.file))
    _emit(args, report, lambda: print(pos.describe(report)))
    return 0


def _data_dir(args: argparse.Namespace) -> Path:
    from core.settings import Settings

    return Path(args.data_dir) if args.data_dir else Settings.from_env().data_dir


def cmd_users_add(args: argparse.Namespace) -> int:
    from core import users

    user = users.cli_add(
        _data_dir(args), args.username, args.role, password_stdin=args.password_stdin, replace=args.replace
    )
    if args.replace:  # a new password signs the user out of every browser
        _end_sessions(_data_dir(args), user.name)
    _emit(
        args,
        {"username": user.name, "role": user.role},
        lambda: print(f"user {user.name} ({user.role}) saved"),
    )
    return 0


def _end_sessions(data_dir: Path, name: str) -> None:
    """Revoke a user's dashboard sessions (the ``sessions`` table of the data dir's database)."""
    from core.local.sessions import SqliteSessions

    SqliteSessions.for_data_dir(data_dir).revoke_user(name)


def cmd_users_list(args: argparse.Namespace) -> int:
    from core.users import UserStore

    items = [{"username": u.name, "role": u.role} for u in UserStore.for_data_dir(_data_dir(args)).list()]
    _emit(args, items, lambda: print("\n".join(f"{u['username']}\t{u['role']}" for u in items) or "no users"))
    return 0


def cmd_dashboard_secrets(args: argparse.Namespace) -> int:
    """Write Streamlit's ``[auth]`` section for the Cognito sign-in (core/aws/dashboard_auth.py)."""
    import boto3

    from core.aws import dashboard_auth
    from core.settings import Settings

    settings = Settings.from_env()
    region = args.region or settings.aws_region
    outputs = dashboard_auth.stack_outputs(boto3.client("cloudformation", region_name=region), args.stack)
    section = dashboard_auth.auth_section_from_stack(
        outputs, args.url, region=region, client=boto3.client("cognito-idp", region_name=region)
    )
    if args.output == "-":
        sys.stdout.write(section)
    else:
        dashboard_auth.write_secrets(Path(args.output), section, force=args.force)
        print(f"wrote [auth] to {args.output} (mode 0600); start the dashboard: streamlit run app.py")
    return 0


def cmd_users_remove(args: argparse.Namespace) -> int:
    from core.users import UserStore

    UserStore.for_data_dir(_data_dir(args)).remove(args.username)
    _end_sessions(_data_dir(args), args.username)
    _emit(args, {"removed": args.username}, lambda: print(f"user {args.username} removed"))
    return 0


# -------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    def options(suppress: bool) -> argparse.ArgumentParser:
        # Subcommands repeat the global options so they work in either place;
        # their defaults are suppressed so they never overwrite a value given
        # before the subcommand.
        opts = argparse.ArgumentParser(add_help=False)
        default = (lambda value: argparse.SUPPRESS) if suppress else (lambda value: value)
        opts.add_argument(
            "--json", action="store_true", default=default(False), help="machine-readable output"
        )
        opts.add_argument(
            "--data-dir",
            default=default(None),
            help="data directory (default: $STORELENS_DATA_DIR or ./data)",
        )
        opts.add_argument("--actor", default=default(_default_actor()), help="name recorded in the audit log")
        return opts

    top, common = options(False), options(True)
    parser = argparse.ArgumentParser(prog="storelens", description=__doc__.splitlines()[0], parents=[top])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("enroll", parents=[common], help="add a customer from photos (one face each)")
    p.add_argument("--name", required=True)
    p.add_argument("--email")
    p.add_argument("--loyalty-id")
    p.add_argument("--notes")
    p.add_argument("images", nargs="+", metavar="IMG")
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("identify", parents=[common], help="name the people in photos")
    p.add_argument("images", nargs="+", metavar="IMG")
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("compare", parents=[common], help="distance between the faces in two photos")
    p.add_argument("image_a", metavar="IMG_A")
    p.add_argument("image_b", metavar="IMG_B")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("ingest", parents=[common], help="ingest FaceEvent JSON files")
    p.add_argument("events", nargs="+", metavar="EVENT.json")
    p.set_defaults(func=cmd_ingest)

    ap = sub.add_parser("approvals", parents=[common], help="the approval queue")
    asub = ap.add_subparsers(dest="approvals_command", required=True, metavar="ACTION")
    p = asub.add_parser("list", parents=[common], help="pending identities")
    p.set_defaults(func=cmd_approvals_list)
    p = asub.add_parser("approve", parents=[common], help="approve as a new customer")
    p.add_argument("pending_id", nargs="?")
    p.add_argument("--token", help="decide through an e-mail link token instead of an id")
    p.add_argument("--name", required=True)
    p.add_argument("--email")
    p.add_argument("--loyalty-id")
    p.add_argument("--notes")
    p.add_argument(
        "--consent",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="the person consented (required to approve)",
    )
    p.set_defaults(func=cmd_approve)
    for name, action, text in (
        ("reject", "reject", "reject: delete the faces"),
        ("not-a-customer", "not_a_customer", "staff or opted out: do not track"),
        ("confirm", "confirm", "review item: it is the suggested customer"),
        ("not-this-person", "not_this_person", "review item: someone else"),
    ):
        p = asub.add_parser(name, parents=[common], help=text)
        p.add_argument("pending_id", nargs="?")
        p.add_argument("--token", help="decide through an e-mail link token instead of an id")
        p.set_defaults(func=cmd_simple_decision(action))
    p = asub.add_parser("merge", parents=[common], help="it is this existing customer")
    p.add_argument("pending_id")
    p.add_argument("customer_id")
    p.set_defaults(func=cmd_merge_pending)

    cp = sub.add_parser("customers", parents=[common], help="customers")
    csub = cp.add_subparsers(dest="customers_command", required=True, metavar="ACTION")
    p = csub.add_parser("list", parents=[common], help="list or search customers")
    p.add_argument("--search")
    p.set_defaults(func=cmd_customers_list)

    p = sub.add_parser("erase", parents=[common], help="erase a customer and every trace of them")
    p.add_argument("customer_id")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_erase)

    p = sub.add_parser(
        "purge",
        parents=[common],
        help="the retention sweep: pending identities, customers' photos and records, anonymous sightings",
    )
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser(
        "edge-gallery",
        parents=[common],
        help="rewrite the edge agents' gallery of consented templates now (AWS, docs/edge.md)",
    )
    p.set_defaults(func=cmd_edge_gallery)

    pp = sub.add_parser("pos", parents=[common], help="point-of-sale data")
    psub = pp.add_subparsers(dest="pos_command", required=True, metavar="ACTION")
    p = psub.add_parser("import", parents=[common], help="import transactions from CSV (docs/pos.md)")
    p.add_argument("file", metavar="FILE.csv")
    p.set_defaults(func=cmd_pos_import)

    up = sub.add_parser("users", parents=[common], help="dashboard users (local backend)")
    usub = up.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    p = usub.add_parser("add", parents=[common], help="create a user (asks for the password twice)")
    p.add_argument("username")
    p.add_argument("--role", choices=("admin", "viewer"), default="viewer")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--replace", action="store_true", help="overwrite an existing user")
    p.set_defaults(func=cmd_users_add)
    p = usub.add_parser("list", parents=[common], help="users and roles")
    p.set_defaults(func=cmd_users_list)
    p = usub.add_parser("remove", parents=[common], help="delete a user")
    p.add_argument("username")
    p.set_defaults(func=cmd_users_remove)

    p = sub.add_parser(
        "dashboard-secrets",
        help="write .streamlit/secrets.toml [auth] for the dashboard's Cognito sign-in (st.login)",
    )
    p.add_argument("--stack", required=True, help="the deployed infra/template.yaml stack")
    p.add_argument("--url", required=True, help="the dashboard's address (the stack's PublicUrl)")
    p.add_argument("--region", help="default: STORELENS_AWS_REGION")
    p.add_argument("--output", default=".streamlit/secrets.toml", help="file to write, or - for stdout")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=cmd_dashboard_secrets)
    return parser


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "pending_id", "x") is None and not getattr(args, "token", None):
        parser.error("give a PENDING_ID or --token")
    try:
        return int(args.func(args))
    except StoreLensError as exc:
        print(f"storelens: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("storelens: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
