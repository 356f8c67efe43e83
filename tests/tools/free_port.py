#!/usr/bin/env python3
"""Prints a TCP port nothing uses on loopback (IPv4 and IPv6), chosen below
the kernel's ephemeral range: a port from bind(0) is an ephemeral port, and
any outgoing connection (thousands, under a load test) may take it before
the program under test binds it. With a count, prints that many ports."""
import random
import socket
import sys


def bindable(port):
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::")):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind((addr, port))
        except OSError:
            if family == socket.AF_INET6 and not socket.has_ipv6:
                continue
            return False
        finally:
            s.close()
    return True


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        first = int(f.read().split()[0])
    low, high = (10000, first) if first > 12000 else (first, 65535)
    chosen = set()
    for _ in range(10000):
        if len(chosen) == count:
            break
        port = random.randrange(low, high)
        if port not in chosen and bindable(port):
            chosen.add(port)
    if len(chosen) < count:
        sys.exit("free_port: no free port found")
    print("\n".join(str(p) for p in sorted(chosen)))


if __name__ == "__main__":
    main()
