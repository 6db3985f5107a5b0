"""`ozwald profile SPEC... | --all`: measure services' footprints on the agent's host.

Each service runs as an isolated copy beside what runs (which is never touched), is
warmed up through its OpenAI API when it declares one, and is stopped again; the agent
stores the footprint and admission counts it from then on. Progress goes to stderr (one
line redrawn on a terminal, one line per step otherwise); the result is a table on
stdout, or JSON with `--json`.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import Any, TextIO

from ozwald.agent.v1 import agent_service_pb2
from ozwald.common.v1.host_profile_pb2 import HostProfile
from ozwald.common.v1.service_spec_pb2 import ServiceSpec

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.config_options import add_config_option, load, reports_invalid_config_as_json
from ozwald_sdk.cli.render_footprints import progress_text, render_footprints, selector
from ozwald_sdk.cli.render_plan import render_plan
from ozwald_sdk.cli.service_args import UsageError, dumps, message_dict, seconds
from ozwald_sdk.cli.text import INDENT
from ozwald_sdk.config import Config, EffectiveService, Selector, resolve
from ozwald_sdk.config.desired_set import parse_selectors
from ozwald_sdk.config.selector import selector_error
from ozwald_sdk.errors import AdmissionRefusedError, ConfigInvalidError, ExitCode

pb = agent_service_pb2
DEFAULT_WARMUP = 8
LOG_LINES_SHOWN = 10


@reports_invalid_config_as_json
def run(invocation: Invocation) -> int:
    args = invocation.args
    _check_arguments(args)
    config = load(invocation)
    selectors = [] if args.all else parse_selectors(args.specs)
    with invocation.agent_client() as client:
        host = client.get_host_profile()
        services = every_service(config, host) if args.all else _selected(config, selectors, host)
        specs = [service.to_service_spec() for service in services]
        done, failed = _profile(invocation, client, specs)
    if invocation.json:
        print(dumps(_document(done, failed)))
    else:
        footprints = [m.footprint for m in done]
        print(render_footprints(footprints, datetime.datetime.now(datetime.UTC)), end="")
        for message in failed:
            _show_failure(message, sys.stdout)
    if any(m.refusals for m in failed):
        return ExitCode.ADMISSION_REFUSED
    return ExitCode.SERVICE_FAILED if failed else ExitCode.OK


def _check_arguments(args: argparse.Namespace) -> None:
    if args.all and args.specs:
        raise UsageError(
            "name the services (SPEC...) or pass --all, not both",
            remedy="--all already means every service of the config, base and each profile",
        )
    if not args.all and not args.specs:
        raise UsageError(
            "no services named: profile needs SPEC... or --all",
            remedy="`ozwald list_configured_services` lists the services",
        )


Messages = list[pb.ProfileServicesResponse]


def _profile(
    invocation: Invocation, client: AgentClient, specs: list[ServiceSpec]
) -> tuple[Messages, Messages]:
    """The DONE and the FAILED messages, with progress shown on stderr as they come."""
    args = invocation.args
    progress = Progress(sys.stderr)
    done: Messages = []
    failed: Messages = []
    try:
        for message in client.profile_services(
            specs, warmup_requests=args.warmup, ready_timeout=args.timeout_ready
        ):
            progress.show(message)
            if message.phase == pb.PROFILE_PHASE_DONE:
                done.append(message)
            elif message.phase == pb.PROFILE_PHASE_FAILED:
                failed.append(message)
    except AdmissionRefusedError as e:
        progress.end()
        # The refused plan, every refusal with its remedy: JSON on stdout for machines,
        # text on stderr (before `main` prints the error) for people.
        if e.plan is not None:
            if invocation.json:
                print(dumps(e.plan))
            else:
                print(render_plan(e.plan), end="", file=sys.stderr)
        raise
    finally:
        progress.end()
    return done, failed


def every_service(config: Config, host: HostProfile) -> list[EffectiveService]:
    """`--all`: every service of every realm (persistent ones too: profiling never touches
    what runs), with the variety chosen for `host`, once for the base and once per profile."""
    selectors = []
    for realm, name, service in config.services():
        selectors.append(Selector(service=name, realm=realm))
        selectors.extend(
            Selector(service=name, realm=realm, profile=profile) for profile in service.profiles
        )
    return _selected(config, selectors, host)


def _selected(
    config: Config, selectors: list[Selector], host: HostProfile
) -> list[EffectiveService]:
    """Each selector's effective spec; one error lists every selector that cannot be used.
    The same realm, service, variety and profile may be named only once."""
    resolved: list[EffectiveService] = []
    errors: list[ConfigInvalidError] = []
    seen: dict[str, Selector] = {}
    for chosen in selectors:
        try:
            service = resolve(config, chosen, host)
        except ConfigInvalidError as e:
            errors.append(e)
            continue
        if service.selector in seen:
            errors.append(
                selector_error(
                    str(chosen),
                    f"{service.selector} is named twice (also as '{seen[service.selector]}')",
                    remedy="name each service, variety and profile once",
                )
            )
            continue
        seen[service.selector] = chosen
        resolved.append(service)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigInvalidError(
            f"{len(errors)} of the services named cannot be used:",
            [d for e in errors for d in e.diagnostics],
            remedy=errors[0].remedy,
        )
    return resolved


class Progress:
    """On a terminal one line, redrawn; otherwise a line per step (a waiting service's
    repeated probe results are left out)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._drawn = 0
        self._last: tuple[int, int] | None = None

    def show(self, message: pb.ProfileServicesResponse) -> None:
        text = progress_text(message)
        final = message.phase in (pb.PROFILE_PHASE_DONE, pb.PROFILE_PHASE_FAILED)
        if self._tty:
            self._out.write("\r" + text.ljust(self._drawn)[: max(self._drawn, len(text))])
            self._drawn = len(text)
            if final:
                self._out.write("\n")
                self._drawn = 0
            self._out.flush()
            return
        step = (message.index, message.phase)
        quiet = step == self._last and message.phase in (
            pb.PROFILE_PHASE_WAITING_FOR_READY,
            pb.PROFILE_PHASE_WARMING_UP,
        )
        self._last = step
        if not quiet:
            print(text, file=self._out, flush=True)

    def end(self) -> None:
        if self._tty and self._drawn:
            self._out.write("\n")
            self._out.flush()
            self._drawn = 0


def _show_failure(message: pb.ProfileServicesResponse, out: TextIO) -> None:
    name = selector(message.service.realm, message.service.name, message.variety, message.profile)
    print(f"\n{name} was not profiled: {message.detail}", file=out)
    for refusal in message.refusals:
        print(f"{INDENT}hint: {refusal.remedy}", file=out)
    if message.last_log_lines:
        print(f"{INDENT}last log lines:", file=out)
        for line in list(message.last_log_lines)[-LOG_LINES_SHOWN:]:
            print(f"{INDENT}{INDENT}{line}", file=out)


def _document(
    done: list[pb.ProfileServicesResponse], failed: list[pb.ProfileServicesResponse]
) -> dict[str, Any]:
    return {
        "footprints": [message_dict(m.footprint) for m in done],
        "failed": [
            {
                "selector": selector(m.service.realm, m.service.name, m.variety, m.profile),
                "detail": m.detail,
                "last_log_lines": list(m.last_log_lines),
                "refusals": [message_dict(r) for r in m.refusals],
            }
            for m in failed
        ],
    }


def _warmup(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1000")
    return value


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "specs",
        metavar="SPEC",
        nargs="*",
        help="[realm:]service[variety][profile], e.g. embed or 'embed[][fast]' (quote the "
        "brackets); the variety, when not named, is chosen for the agent's host",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="every service of the config (persistent ones too), with the variety chosen "
        "for the host: the base and each of its profiles",
    )
    add_config_option(parser)
    parser.add_argument(
        "--warmup",
        metavar="N",
        type=_warmup,
        default=DEFAULT_WARMUP,
        help=f"warm-up requests per service that declares `openai` (default {DEFAULT_WARMUP}; "
        "0: none)",
    )
    parser.add_argument(
        "--timeout-ready",
        metavar="SECONDS",
        type=seconds,
        default=None,
        help="longest wait for one service to be ready (default: from its health check, "
        "at least 120)",
    )


COMMAND = Command(
    name="profile",
    help="measure services' footprints (time to ready, peak memory, CPU, VRAM) by running "
    "an isolated copy of each beside what runs; admission then counts them "
    f"(exit {ExitCode.ADMISSION_REFUSED.value}: does not fit now, "
    f"{ExitCode.SERVICE_FAILED.value}: a service failed)",
    run=run,
    arguments=arguments,
)
