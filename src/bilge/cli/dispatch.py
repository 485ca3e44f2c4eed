"""Run a parsed command: an engine command on one host with a Session of its own
or on a fleet (cli/fleet.py), the guard on all hosts at once, a registry command
on the registries chosen.

Loaded only once the arguments are good (entry.py); the command modules render.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from types import ModuleType

from bilge.cli import apply, config, doctor, history, plan, status, watch
from bilge.cli.common import FLEET_COMMANDS, Global, report_lost, warn
from bilge.collect.prefetch import Prefetch
from bilge.config.locate import find_config
from bilge.config.policy import load_policy, with_orphans
from bilge.engine.contexts import Endpoint
from bilge.fleet import engine_factory
from bilge.report import json as jsonreport
from bilge.session import Session
from bilge.state.store import default_state_dir

#: The commands that run on each engine host.
ON_EACH_HOST: dict[str, ModuleType] = {
    "status": status,
    "plan": plan,
    "apply": apply,
    "doctor": doctor,
    "history": history,
}


def run(
    args: argparse.Namespace,
    hosts: list[str],
    prefetch: Prefetch | None,
    endpoints: list[Endpoint] | None = None,
) -> int:
    """Run the command; `prefetch` reads the first host's data-root; `endpoints`
    are the hosts as named (contexts with their TLS), in the order of `hosts`."""
    endpoints = endpoints or [Endpoint(h, h) for h in hosts]
    options = Global.from_args(args)
    source = find_config(options.config)
    policy = load_policy(source)
    if options.orphans:
        policy = with_orphans(policy)
    state_dir = options.state_dir or default_state_dir()
    if args.command == "config":
        return config.run(source, policy, as_json=options.json)
    if args.command == "watch":
        return watch.run(args, hosts, policy, state_dir)
    if args.command == "report":  # every host in one page
        from bilge.cli import report

        return report.run(args, endpoints, policy, state_dir, prefetch)
    if args.command == "registry":
        from bilge.cli import registry

        return registry.run(args, Session(hosts[0], policy, state_dir=state_dir))
    command = ON_EACH_HOST[args.command]
    command_options = command.Options.from_args(args)
    if args.command in FLEET_COMMANDS and options.fleet:
        from bilge.cli import fleet

        request = fleet.Request(
            args.command, command_options, endpoints, options.json, options.summary
        )
        return fleet.run(request, options, policy, prefetch)
    if args.command == "history" and (options.hosts or options.hosts_files or options.contexts):
        command_options = replace(command_options, hosts=tuple(e.address for e in endpoints))
    session = Session(
        endpoints[0].address,
        policy,
        state_dir=state_dir,
        prefetch=prefetch,
        engine_factory=engine_factory(endpoints[0], policy),
    )
    return _on_one_host(command, command_options, session, as_json=options.json)


def _on_one_host(
    command: ModuleType, command_options: object, session: Session, *, as_json: bool
) -> int:
    """One host, as before fleets: its output, or its one error line (entry.py)."""
    try:
        code, doc = command.run(session, command_options)
    finally:
        warn(session.close())
    code = max(code, report_lost(session.lost()))
    if as_json and doc is not None:
        print(jsonreport.dumps(doc))
    return int(code)
