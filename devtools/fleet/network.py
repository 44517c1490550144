"""Separate "hosts" on one machine: one network namespace per worker, joined to the host by a veth pair.

Addresses come from 198.18.0.0/15 (reserved for network benchmarks) and exist only on the interfaces made
here; there is no route or NAT to anything else. The host's services listen on one address, put on the
host end of every veth pair, so every worker reaches every service at the same address, as hosts reach a
service host. Everything is deleted by :meth:`TestNetwork.down`, also after a failed :meth:`up`. Needs root.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
from dataclasses import dataclass


class NetworkError(RuntimeError):
    """A namespace or link could not be made; the message carries the command and its output."""


@dataclass(frozen=True)
class Host:
    """One worker host: its namespace, its end of the veth pair and its address, and the host's end."""

    name: str
    netns: str
    host_link: str
    ns_link: str
    host_address: str
    address: str

    def exec_prefix(self) -> list[str]:
        """Run a command on this host: in its namespace, with a hostname of its own (a UTS namespace)."""
        return [
            "ip",
            "netns",
            "exec",
            self.netns,
            "unshare",
            "--uts",
            "sh",
            "-c",
            f'hostname "{self.name}" && exec "$@"',
            "sh",
        ]


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)} -> {result.returncode}: {result.stderr.strip()}")


def _addresses_in_use() -> set[ipaddress.IPv4Address]:
    result = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=30)
    found = set()
    for line in result.stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            found.add(ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).ip)
    return found


class TestNetwork:
    """Namespaces ``names`` (one per worker) and the service address they all reach."""

    __test__ = False  # not a pytest test class

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.tag = f"of{os.getpid() % 100000}"
        self.hosts: list[Host] = []
        self.service_address = ""

    def _pick_block(self) -> int:
        """A /24 of 198.18.0.0/16 (and its twin in 198.19) that nothing on this machine uses yet."""
        used = _addresses_in_use()
        for block in range(1 + os.getpid() % 200, 256):
            if not any(ip in ipaddress.ip_network(f"198.18.{block}.0/24") for ip in used) and not any(
                ip in ipaddress.ip_network(f"198.19.{block}.0/24") for ip in used
            ):
                return block
        raise NetworkError("no free /24 left in 198.18.0.0/16")

    def up(self) -> TestNetwork:
        """Make the namespaces and links; on failure delete whatever was made and raise ``NetworkError``."""
        try:
            block = self._pick_block()
            self.service_address = f"198.19.{block}.1"
            for index, name in enumerate(self.names):
                base = 4 * index
                host = Host(
                    name=name,
                    netns=f"{self.tag}-{name}",
                    host_link=f"{self.tag}{index}h",
                    ns_link=f"{self.tag}{index}n",
                    host_address=f"198.18.{block}.{base + 1}",
                    address=f"198.18.{block}.{base + 2}",
                )
                self.hosts.append(host)
                _ip("netns", "add", host.netns)
                _ip("link", "add", host.host_link, "type", "veth", "peer", "name", host.ns_link)
                _ip("link", "set", host.ns_link, "netns", host.netns)
                _ip("addr", "add", f"{host.host_address}/30", "dev", host.host_link)
                _ip("addr", "add", f"{self.service_address}/32", "dev", host.host_link)
                _ip("link", "set", host.host_link, "up")
                ns = ("-n", host.netns)
                _ip(*ns, "addr", "add", f"{host.address}/30", "dev", host.ns_link)
                _ip(*ns, "link", "set", host.ns_link, "up")
                _ip(*ns, "link", "set", "lo", "up")
                _ip(*ns, "route", "add", f"{self.service_address}/32", "via", host.host_address)
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> list[str]:
        """Delete every namespace and link made here (idempotent); returns what could not be deleted."""
        leftovers = []
        for host in self.hosts:
            for args in (("link", "del", host.host_link), ("netns", "del", host.netns)):
                with contextlib.suppress(NetworkError):
                    _ip(*args)
        for host in self.hosts:
            if subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True).returncode == 0:
                leftovers.append(f"netns {host.netns}")
            if subprocess.run(["ip", "link", "show", host.host_link], capture_output=True).returncode == 0:
                leftovers.append(f"link {host.host_link}")
        self.hosts = []
        return leftovers
