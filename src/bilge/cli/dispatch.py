"""Run a parsed command: an engine command on each host with a Session of its own,
the guard on all hosts at once, a registry command on the registries chosen.

Loaded only once the arguments are good (entry.py); the command modules render.
"""

from __future__ import annotations

import argparse
from types import ModuleType

from bilge.cli import apply, config, doctor, history, plan, status, watch
from bilge.cli.common import Global, out, report_lost, warn
from bilge.collect.prefetch import Prefetch
from bilge.config.locate import find_config
from bilge.config.policy import load_policy, with_orphans
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


def run(args: argparse.Namespace, hosts: list[str], prefetch: Prefetch | None) -> int:
    """Run the command; `prefetch` reads the first host's data-root."""
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

        return report.run(args, hosts, policy, state_dir, prefetch)
    if args.command == "registry":
        from bilge.cli import registry

        return registry.run(args, Session(hosts[0], policy, state_dir=state_dir))
    command = ON_EACH_HOST[args.command]
    command_options = command.Options.from_args(args)
    codes: list[int] = []
    docs: list[dict[str, object]] = []
    for host in hosts:
        if len(hosts) > 1 and not options.json:
            out().rule(host)
        session = Session(
            host, policy, state_dir=state_dir, prefetch=prefetch if host == hosts[0] else None
        )
        try:
            code, doc = command.run(session, command_options)
        finally:
            warn(session.close())
        codes.append(max(code, report_lost(session.lost())))
        if doc is not None:
            docs.append(doc)
    if options.json:
        many = {"schema": jsonreport.SCHEMA, "kind": "hosts", "results": docs}
        print(jsonreport.dumps(docs[0] if len(docs) == 1 else many))
    return max(codes)
