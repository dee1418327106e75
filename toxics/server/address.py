"""`host:port` strings as Go's net package reads and prints them (`[::1]:80`, `:8474`)."""

from __future__ import annotations

import socket


class AddressError(ValueError):
    pass


def split_host_port(address: str) -> tuple[str, str]:
    if address == "":
        return "", ""  # Go's net.Listen takes "" as every interface, any port
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise AddressError(f"address {address}: missing ']' in address")
        host, rest = address[1:end], address[end + 1:]
        if not rest.startswith(":"):
            raise AddressError(f"address {address}: missing port in address")
        return host, rest[1:]
    if ":" not in address:
        raise AddressError(f"address {address}: missing port in address")
    host, port = address.rsplit(":", 1)
    if ":" in host:
        raise AddressError(f"address {address}: too many colons in address")
    return host, port


def port_number(port: str) -> int:
    """A port number, or a service name from /etc/services (Go accepts `localhost:http` too)."""
    if port == "":
        return 0
    if not port.isdigit():
        try:
            return socket.getservbyname(port, "tcp")
        except OSError:
            raise AddressError(f"lookup tcp/{port}: unknown port") from None
    if len(port) > 5 or int(port) > 65535:
        raise AddressError(f"address {port[:20]}: invalid port")
    return int(port)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind(address: str) -> socket.socket:
    """A listening socket for `address`; an empty host means every interface (IPv6 dual-stack)."""
    if "\x00" in address:
        raise AddressError(f"address {address!r}: invalid NUL byte in address")
    host, port_text = split_host_port(address)
    port = port_number(port_text)
    if host == "":
        candidates = [(socket.AF_INET6, ("::", port))] if socket.has_ipv6 else []
        candidates.append((socket.AF_INET, ("0.0.0.0", port)))
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise AddressError(f"lookup {host}: {exc.strerror}") from None
        # Go prefers IPv4 for names like "localhost" that resolve to both.
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        candidates = [(info[0], info[4][:2]) for info in infos[:1]]
    error: OSError | None = None
    for family, sockaddr in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and host == "":
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(sockaddr)
            sock.listen(4096)
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    assert error is not None
    raise error


def bound_address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return join_host_port(host, port)
