"""`gtkit serve init|run|user|team|job`: the self-hosted labeling service (toolkit.service).

Every command opens the database of `--data DIR` (SQLite: DIR/gtkit.db) or `--db URL`
(postgresql://...); both can come from the environment (GTKIT_DATA, GTKIT_DB). Commands act as
the operator (audit rows with no actor). Errors are mapped to one line and an exit code by the root
command (toolkit.cli.GtkitGroup), as everywhere else.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from toolkit.cli.common import MirrorOpt, console, fail, make_storage, say

# How far a served job's output files may trail its database (the queue's debounce of output writes,
# toolkit.service.queue): a rewrite of output.manifest costs time in proportion to the job's size.
OUTPUT_DELAY_S = 5.0

serve_app = typer.Typer(help="Run the self-hosted labeling service (accounts, jobs, a database).",
                        no_args_is_help=True)
user_app = typer.Typer(help="Accounts: add, invite, reset-password, list, disable, enable, role, unlink-sso.",
                       no_args_is_help=True)
team_app = typer.Typer(help="Teams: add, member.", no_args_is_help=True)
sjob_app = typer.Typer(help="Jobs on the service: create, list, show, pause, resume, cancel, add-objects, "
                            "write-output, import.", no_args_is_help=True)
serve_app.add_typer(user_app, name="user")
serve_app.add_typer(team_app, name="team")
serve_app.add_typer(sjob_app, name="job")

DataOpt = Annotated[Path, typer.Option("--data", envvar="GTKIT_DATA",
                                       help="Data directory (SQLite database, default job output).")]
DbOpt = Annotated[str | None, typer.Option("--db", envvar="GTKIT_DB",
                                           help="Database URL (postgresql://...); default: sqlite in --data.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")]
PASSWORD_ENV = "GTKIT_PASSWORD"
OIDC_SECRET_ENV = "GTKIT_OIDC_CLIENT_SECRET"


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")


def open_db(data: Path, db: str | None, *, check: bool = True):  # type: ignore[no-untyped-def]
    """The service database; unless `check` is off, it must be migrated to this version's head."""
    from toolkit.service import migrate
    from toolkit.service.db import Database

    database = Database(db) if db else Database.for_data_dir(data)
    if check:
        current, head = migrate.current_revision(database), migrate.head_revision()
        if current != head:
            database.dispose()
            raise fail(f"the database is at revision {current}, this gtkit needs {head}: run "
                       f"`gtkit serve init --data {data}{' --db URL' if db else ''}` first")
    return database


def read_password(password_file: Path | None, prompt: str) -> str:
    """From a file (first line), else $GTKIT_PASSWORD, else a hidden prompt; never an argument
    (arguments show in `ps` and shell history)."""
    if password_file is not None:
        return password_file.read_text(encoding="utf-8").splitlines()[0] if password_file.stat().st_size else ""
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=True)


def find_user(database, ref: str):  # type: ignore[no-untyped-def]
    from toolkit.service import people
    from toolkit.service.errors import NotFound

    for user in people.list_users(database):
        if str(user.id) == ref or (user.email or "") == ref.strip().lower():
            return user
    raise NotFound(f"no account {ref!r} (give its email or id; see `gtkit serve user list`)")


def find_team(database, ref: str):  # type: ignore[no-untyped-def]
    from toolkit.service import people
    from toolkit.service.errors import NotFound

    for team in people.list_teams(database):
        if str(team.id) == ref or team.name == ref:
            return team
    raise NotFound(f"no team {ref!r} (see `gtkit serve team add`)")


def find_job(database, ref: str):  # type: ignore[no-untyped-def]
    from toolkit.service import jobs

    return jobs.get_job(database, int(ref)) if ref.isdigit() else jobs.get_job(database, ref)


def _load_schema(schema: str):  # type: ignore[no-untyped-def]
    from toolkit.contract import load_label_schema

    return load_label_schema(schema)  # a missing or invalid schema: the root command's one line (exit 1 / 2)


# -- init, run ----------------------------------------------------------------------------------
def oidc_config(issuer: str | None, client_id: str | None, secret_file: Path | None, **policy):  # type: ignore[no-untyped-def]
    """`gtkit serve run`'s SSO options as an OidcConfig, or None when --oidc-issuer is not given.
    The secret comes from a file or the environment, never from an argument (`ps`, shell history)."""
    from toolkit.service.sso import OidcConfig

    if not issuer:
        if client_id or secret_file:
            raise fail("--oidc-client-id/--oidc-secret-file need --oidc-issuer")
        return None
    if not client_id:
        raise fail("--oidc-issuer needs --oidc-client-id")
    if secret_file is not None:
        lines = secret_file.read_text(encoding="utf-8").splitlines()
        secret = lines[0].strip() if lines else ""
    else:
        secret = os.environ.get(OIDC_SECRET_ENV, "").strip()
    if not secret:
        raise fail(f"single sign-on needs the client secret: --oidc-secret-file FILE or ${OIDC_SECRET_ENV}")
    return OidcConfig(issuer=issuer, client_id=client_id, client_secret=secret, discovery_url=policy["discovery"],
                      allowed_domains=policy["domains"], email_claim=policy["email_claim"],
                      new_users=policy["new_users"], label=policy["label"])  # Invalid: the CLI's one-line error


@serve_app.command("init")
def init(
    data: DataOpt,
    db: DbOpt = None,
    admin_email: Annotated[str | None, typer.Option("--admin-email", help="Create this first admin account.")] = None,
    admin_name: Annotated[str, typer.Option("--admin-name", help="The admin's display name.")] = "Admin",
    password_file: Annotated[Path | None, typer.Option(
        "--password-file",
        help="Read the admin's password from this file (else $GTKIT_PASSWORD, else a prompt).")] = None,
) -> None:
    """Create or migrate the database (safe to rerun; upgrades after a gtkit update), and the first admin.

    Example:

        gtkit serve init --data serve-data --admin-email admin@example.org

    (the password is read from $GTKIT_PASSWORD, else prompted for)
    """
    from toolkit.service import migrate, people
    from toolkit.service.web.context import shared_secret

    data.mkdir(parents=True, exist_ok=True)
    database = open_db(data, db, check=False)
    try:
        before = migrate.current_revision(database)
        migrate.upgrade(database)
        shared_secret(database)  # made once, here, so every instance finds it
        say(f"database {'created' if before is None else 'at'} revision {migrate.head_revision()} "
            f"({'was ' + before if before else 'new'}): {database.url.split('@')[-1]}")
        if admin_email:
            if any(u.email == admin_email.strip().lower() for u in people.list_users(database)):
                say("the admin account exists already; left as it is")
            else:
                admin = people.create_user(database, email=admin_email, display_name=admin_name, role="admin",
                                           password=read_password(password_file, "Admin password"))
                say(f"admin account {admin.id} created; sign in at `gtkit serve run`'s address")
    finally:
        database.dispose()


@serve_app.command("run")
def run(
    data: DataOpt,
    db: DbOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (put a TLS proxy in front).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 8080,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-w", min=1, max=64,
        help="gunicorn worker processes (default: 1 on SQLite, which has one writer and whose writers "
             "queue better on one process's lock than on its busy handler; 4 on PostgreSQL).")] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, max=64, help="Threads per worker.")] = 8,
    out: Annotated[str | None, typer.Option(
        "--out", help="Where jobs made in the web UI write (local or s3://); default DATA/output.")] = None,
    media_root: Annotated[list[Path] | None, typer.Option(
        "--media-root", help="Local folder media (peaks, sidecars) may be served from. Repeatable.")] = None,
    plain_http: Annotated[bool, typer.Option(
        "--plain-http", help="Cookies without the Secure flag, for http://127.0.0.1 without a TLS proxy.")] = False,
    proxies: Annotated[int, typer.Option(
        "--behind-proxies", min=0, max=5,
        help="Trust X-Forwarded-For/-Proto/-Host from this many proxies in front (nginx, Caddy).")] = 0,
    no_queue: Annotated[bool, typer.Option(
        "--no-queue", help="Do not work the consolidation queue here (by default one process beside the "
                           "workers does; with --dev a thread).")] = False,
    queue_lease: Annotated[int, typer.Option(
        "--queue-lease", min=5, max=86_400,
        help="Seconds after which queue work held by a killed process is taken up again.")] = 600,
    output_delay: Annotated[float, typer.Option(
        "--output-delay", min=0, max=3600,
        help="Seconds a job's output files may trail its database: output.manifest is rewritten at most "
             "about this often while answers come in (0: after every change; `gtkit serve job "
             "write-output` writes it now).")] = OUTPUT_DELAY_S,
    dev: Annotated[bool, typer.Option("--dev", help="Flask's development server, one process (implies "
                                                    "--plain-http).")] = False,
    mirror: MirrorOpt = None,
    oidc_issuer: Annotated[str | None, typer.Option(
        "--oidc-issuer", envvar="GTKIT_OIDC_ISSUER",
        help="Single sign-on: the OpenID Connect provider's issuer URL (turns SSO on).")] = None,
    oidc_client_id: Annotated[str | None, typer.Option(
        "--oidc-client-id", envvar="GTKIT_OIDC_CLIENT_ID", help="SSO: this service's client id.")] = None,
    oidc_secret_file: Annotated[Path | None, typer.Option(
        "--oidc-secret-file",
        help=f"SSO: read the client secret from this file (else ${OIDC_SECRET_ENV}); never an argument.")] = None,
    oidc_discovery: Annotated[str | None, typer.Option(
        "--oidc-discovery",
        help="SSO: discovery document URL (default ISSUER/.well-known/openid-configuration).")] = None,
    oidc_domain: Annotated[list[str] | None, typer.Option(
        "--oidc-domain", help="SSO: only emails of this domain may link or get an account. Repeatable.")] = None,
    oidc_email_claim: Annotated[str, typer.Option(
        "--oidc-email-claim", help="SSO: the ID-token claim matched against account emails.")] = "email",
    oidc_new_users: Annotated[str, typer.Option(
        "--oidc-new-users",
        help="SSO: what an identity whose email has no account or invitation gets: none (refused; the "
             "default), annotator or reviewer (a new account in no team).")] = "none",
    oidc_label: Annotated[str, typer.Option(
        "--oidc-label", help="SSO: the sign-in button says \"Sign in with LABEL\".")] = "single sign-on",
) -> None:
    """Serve the labeling service: annotators sign in and label, admins steer jobs at /admin.

    Example (on this machine, no TLS proxy):

        gtkit serve run --data serve-data --plain-http \\
            --mirror s3://example-feedback-bucket/=examples
    """
    from toolkit.service.web import ServeConfig, create_app
    from toolkit.service.web.server import configure_logging, run_dev, run_gunicorn

    oidc = oidc_config(oidc_issuer, oidc_client_id, oidc_secret_file, discovery=oidc_discovery,
                       domains=tuple(oidc_domain or ()), email_claim=oidc_email_claim, new_users=oidc_new_users,
                       label=oidc_label)
    database = open_db(data, db)
    if workers is None:
        workers = 4 if database.is_postgres else 1
    database.dispose()  # each worker opens its own after the fork
    storage_specs = list(mirror or ())
    make_storage(storage_specs)  # check --mirror now, not in every worker

    def open_database():  # type: ignore[no-untyped-def]
        from toolkit.service.db import Database

        return Database(db) if db else Database.for_data_dir(data)

    def queue_worker():  # type: ignore[no-untyped-def]
        from toolkit.service.runner import QueueWorker

        return QueueWorker(open_database(), storage=make_storage(storage_specs), lease_s=queue_lease,
                           output_delay_s=output_delay)

    def factory():  # type: ignore[no-untyped-def]
        app = create_app(ServeConfig(
            db=open_database(), output_uri=out or str(data.resolve() / "output"),
            storage=make_storage(storage_specs), media_roots=tuple(p.resolve() for p in media_root or ()),
            secure_cookies=not (plain_http or dev), run_queue=dev and not no_queue, queue_lease_s=queue_lease,
            output_delay_s=output_delay,
            cache_templates=not dev, oidc=oidc))
        if proxies:
            from werkzeug.middleware.proxy_fix import ProxyFix

            app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
        return app

    say(f"gtkit serve on http://{host}:{port} ({'dev server' if dev else f'{workers} workers'}"
        f"{', single sign-on on' if oidc else ''}); Ctrl+C stops")
    if dev:
        configure_logging()
        run_dev(factory(), host=host, port=port)
    else:
        run_gunicorn(factory, host=host, port=port, workers=workers, threads=threads,
                     queue=None if no_queue else queue_worker)


# -- users, teams -------------------------------------------------------------------------------
@user_app.command("add")
def user_add(
    email: Annotated[str, typer.Argument(help="Sign-in email.")],
    data: DataOpt,
    db: DbOpt = None,
    name: Annotated[str, typer.Option("--name", help="Display name (shown to admins, never in outputs).")] = "",
    role: Annotated[str, typer.Option("--role", help="admin, annotator or reviewer.")] = "annotator",
    team: Annotated[list[str] | None, typer.Option("--team", help="Team name or id. Repeatable.")] = None,
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", help="Read the password from this file (else $GTKIT_PASSWORD, else a prompt).")] = None,
) -> None:
    """Create an account with a password.

    Example:

        gtkit serve user add ann@example.org --name Ann --team calls \\
            --data serve-data
    """
    from toolkit.service import people

    database = open_db(data, db)
    team_ids = tuple(find_team(database, t).id for t in team or ())
    user = people.create_user(database, email=email, display_name=name or email.split("@")[0], role=role,
                              team_ids=team_ids, password=read_password(password_file, "Password"))
    say(f"account {user.id} ({user.role}) created; workerId {user.worker_id}")


@user_app.command("invite")
def user_invite(
    email: Annotated[str, typer.Argument(help="Who the link is for.")],
    data: DataOpt,
    db: DbOpt = None,
    role: Annotated[str, typer.Option("--role", help="admin, annotator or reviewer.")] = "annotator",
    team: Annotated[str | None, typer.Option("--team", help="Team name or id the account joins.")] = None,
    hours: Annotated[float, typer.Option("--hours", min=0.1, max=24 * 90, help="Link lifetime.")] = 24 * 7,
    base_url: Annotated[str, typer.Option("--base-url", help="The service's public address.")] = "http://127.0.0.1:8080",
) -> None:
    """Print a single-use invitation link (to stdout, to pipe into a mail).

    Example:

        gtkit serve user invite bob@example.org --team calls \\
            --base-url https://label.example.org --data serve-data
    """
    from toolkit.service import people

    database = open_db(data, db)
    team_id = find_team(database, team).id if team else None
    link = people.invite(database, email=email, role=role, team_id=team_id, ttl_s=round(hours * 3600))
    typer.echo(f"{base_url.rstrip('/')}/invite/{link.token}")
    say(f"single-use link, valid until {link.expires_at:%Y-%m-%d %H:%M} UTC")


@user_app.command("reset-password")
def user_reset_password(
    user: Annotated[str, typer.Argument(help="Email or id.")],
    data: DataOpt,
    db: DbOpt = None,
    hours: Annotated[float, typer.Option("--hours", min=0.1, max=24 * 90, help="Link lifetime.")] = 24 * 7,
    base_url: Annotated[str, typer.Option("--base-url", help="The service's public address.")] = "http://127.0.0.1:8080",
) -> None:
    """Print a single-use password-reset link (to stdout, to pipe into a mail).

    The same link as Reset password on the admin Users page: the account's owner opens it and
    chooses a new password, which ends their sessions. A newer link replaces an unused older one;
    the current password keeps working until the link is used.

    Example:

        gtkit serve user reset-password ann@example.org \\
            --base-url https://label.example.org --data serve-data
    """
    from toolkit.service import people

    database = open_db(data, db)
    link = people.reset_link(database, find_user(database, user).id, ttl_s=round(hours * 3600))
    typer.echo(f"{base_url.rstrip('/')}/invite/{link.token}")
    say(f"single-use password-reset link, valid until {link.expires_at:%Y-%m-%d %H:%M} UTC")


@user_app.command("list")
def user_list(data: DataOpt, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List accounts, with the issuers of their single sign-on links (never the provider's subject).

    Example:

        gtkit serve user list --data serve-data
    """
    from toolkit.service import people, sso

    database = open_db(data, db)
    users = people.list_users(database)
    teams = {t.id: t.name for t in people.list_teams(database)}
    linked = sso.linked_issuers(database)
    rows = [{**asdict(u), "teams": [teams[t] for t in people.user_team_ids(database, u.id)],
             "sso": linked.get(u.id, [])} for u in users]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("id", "email", "name", "role", "teams", "workerId", "state")
    table.add_column("SSO", overflow="fold")  # the issuers, one a line, whole however narrow the terminal
    for r in rows:
        table.add_row(str(r["id"]), escape(r["email"] or ""), escape(r["display_name"]), r["role"],
                      escape(", ".join(r["teams"])), r["worker_id"], "disabled" if r["disabled"] else "active",
                      escape("\n".join(r["sso"])) or "no")
    console.print(table)


@user_app.command("disable")
def user_disable(user: Annotated[str, typer.Argument(help="Email or id.")], data: DataOpt, db: DbOpt = None) -> None:
    """No more sign-in; sessions end now; a held task goes back.

    Example:

        gtkit serve user disable ann@example.org --data serve-data
    """
    from toolkit.service import people

    database = open_db(data, db)
    people.disable_user(database, find_user(database, user).id)
    say("disabled")


@user_app.command("enable")
def user_enable(user: Annotated[str, typer.Argument(help="Email or id.")], data: DataOpt, db: DbOpt = None) -> None:
    """Allow sign-in again.

    Example:

        gtkit serve user enable ann@example.org --data serve-data
    """
    from toolkit.service import people

    database = open_db(data, db)
    people.enable_user(database, find_user(database, user).id)
    say("enabled")


@user_app.command("role")
def user_role(user: Annotated[str, typer.Argument(help="Email or id.")],
              role: Annotated[str, typer.Argument(help="admin, annotator or reviewer.")],
              data: DataOpt, db: DbOpt = None) -> None:
    """Change an account's role.

    Example:

        gtkit serve user role ann@example.org reviewer --data serve-data
    """
    from toolkit.service import people

    database = open_db(data, db)
    people.set_role(database, find_user(database, user).id, role)
    say(f"role set to {role}")


@user_app.command("unlink-sso")
def user_unlink_sso(
    user: Annotated[str, typer.Argument(help="Email or id.")],
    data: DataOpt,
    db: DbOpt = None,
    issuer: Annotated[str | None, typer.Option(
        "--issuer", help="Only the identity of this issuer (as `user list` shows it); default: every one.")] = None,
) -> None:
    """Remove the account's single sign-on links; its sessions end.

    The same as Unlink SSO on the admin Users page: the password, if any, keeps working, and the
    next SSO sign-in is a first one again (it links by the ID token's email). The way out when the
    person's account at the provider was recreated; to stop someone signing in, disable the account.

    Example:

        gtkit serve user unlink-sso ann@example.org \\
            --issuer https://login.example.org/realms/staff --data serve-data
    """
    from toolkit.service import sso

    database = open_db(data, db)
    removed = sso.unlink(database, find_user(database, user).id, issuer=issuer)
    say(f"{removed} single sign-on link{'s' if removed != 1 else ''} removed; the account's sessions ended")


@team_app.command("add")
def team_add(name: Annotated[str, typer.Argument(help="Team name.")], data: DataOpt, db: DbOpt = None) -> None:
    """Create a team (Ground Truth's work team).

    Example:

        gtkit serve team add calls --data serve-data
    """
    from toolkit.service import people

    team = people.create_team(open_db(data, db), name)
    say(f"team {team.id} created")


@team_app.command("member")
def team_member(team: Annotated[str, typer.Argument(help="Team name or id.")],
                user: Annotated[str, typer.Argument(help="Email or id.")],
                data: DataOpt, db: DbOpt = None,
                remove: Annotated[bool, typer.Option("--remove", help="Take the account out of the team.")] = False,
                ) -> None:
    """Put an account in a team (or out, with --remove).

    Example:

        gtkit serve team member calls ann@example.org --data serve-data
    """
    from toolkit.service import people

    database = open_db(data, db)
    team_id, user_id = find_team(database, team).id, find_user(database, user).id
    (people.remove_member if remove else people.add_member)(database, team_id, user_id)
    say("removed from the team" if remove else "added to the team")


# -- jobs ---------------------------------------------------------------------------------------
JobArg = Annotated[str, typer.Argument(help="Job name or id.")]


@sjob_app.command("create")
def job_create(
    name: Annotated[str, typer.Option("--name", help="Job name (Ground Truth's LabelingJobName rules).")],
    manifest: Annotated[str, typer.Option("--manifest", "-m", help="Input manifest (local or s3://).")],
    schema: Annotated[str, typer.Option("--schema", "-s", help="Label schema: built-in name or YAML path.")],
    team: Annotated[str, typer.Option("--team", help="Team name or id whose members label it.")],
    data: DataOpt,
    db: DbOpt = None,
    workers: Annotated[int, typer.Option("--workers", "-n", min=1, max=9, help="Answers per object.")] = 1,
    time_limit: Annotated[int, typer.Option("--time-limit", min=30, max=28_800,
                                            help="Seconds a worker holds a task.")] = 3600,
    availability: Annotated[int, typer.Option("--availability", help="Seconds an object stays open.")] = 30 * 86400,
    priority: Annotated[int, typer.Option("--priority", help="Higher is served first.")] = 0,
    label_attribute: Annotated[str, typer.Option("--label-attribute")] = "segments",
    out: Annotated[str | None, typer.Option("--out", help="Output root (local or s3://); default DATA/output.")] = None,
    mirror: MirrorOpt = None,
    gold_rate: Annotated[float, typer.Option(
        "--gold-rate", min=0, max=1,
        help="Share of each worker's tasks that are gold objects (lines with a gold-answer); "
             "0: gold lines are queued like any other.")] = 0.0,
) -> None:
    """Create a job from a manifest; its output goes to OUT/NAME/ in Ground Truth's layout.

    With --gold-rate R, lines carrying a gold-answer are mixed in: about R of each worker's tasks
    are gold objects (every worker answers them; they never block the job's completion), scored
    by `gtkit report --workers`.

    Example:

        gtkit serve job create --name calls-1 --team calls --workers 2 \\
            --manifest demo-out/manifest.jsonl --schema call-center \\
            --data serve-data
    """
    from toolkit.service import jobs

    database = open_db(data, db)
    job = jobs.create_job(database, name=name, manifest=manifest, schema=_load_schema(schema),
                          team_id=find_team(database, team).id, output_uri=out or str(data.resolve() / "output"),
                          workers_per_object=workers, task_time_limit_s=time_limit, availability_s=availability,
                          priority=priority, label_attribute=label_attribute, storage=make_storage(mirror),
                          gold_rate=gold_rate)
    p = jobs.job_progress(database, job.id)
    gold = f", {p.gold} gold mixed in at rate {job.gold_rate:g}" if job.gold_rate > 0 else ""
    say(f"job {job.id} {job.name}: {p.objects} objects ({p.declined} declined by the pre-annotation Lambda{gold}), "
        f"status {job.status}")


@sjob_app.command("create-review")
def job_create_review(
    job: JobArg,
    data: DataOpt,
    db: DbOpt = None,
    all_objects: Annotated[bool, typer.Option("--all", help="Review every consolidated object.")] = False,
    below_agreement: Annotated[float | None, typer.Option(
        "--below-agreement", min=0, max=1, help="Review the objects whose overall agreement is below this.")] = None,
    sample: Annotated[float | None, typer.Option(
        "--sample", min=0, max=100, help="Review this percentage of the objects, chosen at random (--seed).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --sample: the same seed picks the same objects.")] = 0,
    name: Annotated[str | None, typer.Option("--name", help="Review job name (default: JOB-review).")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Team of the reviewers (default: the job's).")] = None,
    workers: Annotated[int, typer.Option("--workers", "-n", min=1, max=9, help="Reviews per object.")] = 1,
    priority: Annotated[int, typer.Option("--priority", help="Higher is served first.")] = 0,
    mirror: MirrorOpt = None,
) -> None:
    """Create a review job of a labeling job: reviewers accept, edit or reject each label; a reject sends
    the object back to the annotators with the reviewer's note (docs/review.md).

    Example:

        gtkit serve job create-review calls-1 --below-agreement 0.8 --data serve-data
    """
    from toolkit.service import review

    if sum((all_objects, below_agreement is not None, sample is not None)) != 1:
        raise fail("give one of --all, --below-agreement X, --sample PCT")
    database = open_db(data, db)
    prior = find_job(database, job)
    made = review.create_review_job(database, prior.id, name=name, below_agreement=below_agreement,
                                    sample_pct=sample, seed=seed,
                                    team_id=find_team(database, team).id if team else None,
                                    workers_per_object=workers, priority=priority, storage=make_storage(mirror))
    from toolkit.service import jobs

    p = jobs.job_progress(database, made.id)
    say(f"review job {made.id} {made.name} of {prior.name}: {p.objects} objects, label attribute "
        f"{made.label_attribute}; reviewers (role reviewer) of team {made.team_id} take its tasks")


def _progress_dict(database, job) -> dict:  # type: ignore[no-untyped-def]
    from toolkit.service import jobs, queue

    return {**asdict(job), "created_at": job.created_at.isoformat(),
            "progress": asdict(jobs.job_progress(database, job.id)),
            "queue": asdict(queue.job_state(database, job.id))}


@sjob_app.command("list")
def job_list(data: DataOpt, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Jobs with progress.

    Example:

        gtkit serve job list --data serve-data
    """
    from toolkit.service import jobs

    database = open_db(data, db)
    rows = [_progress_dict(database, j) for j in jobs.list_jobs(database)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("id", "name", "status", "done", "open", "answers", "answers/h", "median s")
    for r in rows:
        p = r["progress"]
        median = p["median_time_spent_s"]
        done = p["consolidated"] + p["declined"]
        table.add_row(str(r["id"]), escape(r["name"]), r["status"], f"{done}/{p['objects']}",
                      str(p["open"]), str(p["answers"]), str(p["answers_last_hour"]),
                      "-" if median is None else f"{median:.1f}")
    console.print(table)


@sjob_app.command("show")
def job_show(job: JobArg, data: DataOpt, db: DbOpt = None) -> None:
    """A job's settings, progress and queue (rows waiting, failing, and the error) as JSON.

    Example:

        gtkit serve job show calls-1 --data serve-data
    """
    database = open_db(data, db)
    typer.echo(json.dumps(_progress_dict(database, find_job(database, job)), indent=2))


def _transition(action: str, job: str, data: Path, db: str | None) -> None:
    from toolkit.service import jobs

    database = open_db(data, db)
    info = {"pause": jobs.pause_job, "resume": jobs.resume_job, "cancel": jobs.cancel_job}[action](
        database, find_job(database, job).id)
    say(f"job {info.name} is {info.status}")


@sjob_app.command("pause")
def job_pause(job: JobArg, data: DataOpt, db: DbOpt = None) -> None:
    """No new tasks handed out.

    Example:

        gtkit serve job pause calls-1 --data serve-data
    """
    _transition("pause", job, data, db)


@sjob_app.command("resume")
def job_resume(job: JobArg, data: DataOpt, db: DbOpt = None) -> None:
    """Hand out tasks again.

    Example:

        gtkit serve job resume calls-1 --data serve-data
    """
    _transition("resume", job, data, db)


@sjob_app.command("cancel")
def job_cancel(job: JobArg, data: DataOpt, db: DbOpt = None) -> None:
    """No more tasks or submits; answers so far stay in the output.

    Example:

        gtkit serve job cancel calls-1 --data serve-data
    """
    _transition("cancel", job, data, db)


@sjob_app.command("add-objects")
def job_add_objects(job: JobArg, manifest: Annotated[str, typer.Option("--manifest", "-m", help="More lines.")],
                    data: DataOpt, db: DbOpt = None, mirror: MirrorOpt = None) -> None:
    """Append a manifest to a running job; lines already in it are skipped (safe to resend).

    Example:

        gtkit serve job add-objects calls-1 --manifest more.jsonl \\
            --data serve-data
    """
    from toolkit.service import jobs

    database = open_db(data, db)
    result = jobs.add_objects(database, find_job(database, job).id, manifest, storage=make_storage(mirror))
    say(f"{result.added} added ({result.declined} declined), {result.duplicates} already in the job")


@sjob_app.command("write-output")
def job_write_output(job: JobArg, data: DataOpt, db: DbOpt = None) -> None:
    """Work the queue, then rewrite the job's whole output layout from the database.

    Example:

        gtkit serve job write-output calls-1 --data serve-data
    """
    from toolkit.service import output, runner

    database = open_db(data, db)
    info = find_job(database, job)
    runner.run_queue(database)
    stats = output.write_output(database, info.id, full=True)
    say(f"{stats.objects} lines ({stats.labeled} labeled), {stats.object_files_written} objects' files written")
    typer.echo(stats.manifest_uri)


@sjob_app.command("import")
def job_import(
    root: Annotated[str, typer.Argument(help="A Ground Truth job's output folder: S3OutputPath/LabelingJobName.")],
    name: Annotated[str, typer.Option("--name", help="The new job's name.")],
    schema: Annotated[str, typer.Option("--schema", "-s", help="Label schema: built-in name or YAML path.")],
    team: Annotated[str, typer.Option("--team", help="Team name or id.")],
    data: DataOpt,
    db: DbOpt = None,
    workers: Annotated[int, typer.Option("--workers", "-n", min=1, max=9, help="Answers per object.")] = 1,
    label_attribute: Annotated[str, typer.Option("--label-attribute")] = "segments",
    out: Annotated[str | None, typer.Option("--out", help="Output root; default DATA/output.")] = None,
    mirror: MirrorOpt = None,
) -> None:
    """Import a Ground Truth job's output layout (answers, labels) to continue or review it here.

    Example:

        gtkit serve job import s3://bucket/gt-output/calls-1 --name calls-2 \\
            --schema call-center --team calls --data serve-data
    """
    from toolkit.service import gt_import

    database = open_db(data, db)
    result = gt_import.import_gt_output(database, root, name=name, schema=_load_schema(schema),
                                        team_id=find_team(database, team).id,
                                        output_uri=out or str(data.resolve() / "output"), workers_per_object=workers,
                                        label_attribute=label_attribute, storage=make_storage(mirror))
    say(f"job {result.job.id} {result.job.name}: {result.objects} objects, {result.labeled} labeled, "
        f"{result.answers} answers imported")
