# What a program in the sandbox tries, for tests/network.rs. One line of output per argument:
#   tcp:HOST:PORT      -> "ok LINE" (the server's first line) or "errno NAME"
#   resolve:NAME:PORT  -> the address, then as tcp
#   abstract:NAME      -> "ok" or "errno NAME" (connect to an abstract unix socket)
import errno, socket, sys


def line(s):
    return s.makefile().readline().strip()


def tcp(host, port):
    try:
        s = socket.create_connection((host, int(port)), timeout=30)
        return "ok " + line(s)
    except OSError as e:
        return "errno " + errno.errorcode.get(e.errno, str(e.errno))


for arg in sys.argv[1:]:
    kind, rest = arg.split(":", 1)
    if kind == "tcp":
        host, port = rest.rsplit(":", 1)
        print(tcp(host.strip("[]"), port), flush=True)
    elif kind == "resolve":
        name, port = rest.rsplit(":", 1)
        try:
            addr = socket.getaddrinfo(name, int(port), socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
            print(addr, tcp(addr, port), flush=True)
        except OSError as e:
            print("errno", e, flush=True)
    elif kind == "abstract":
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect("\0" + rest)
            print("ok", flush=True)
        except OSError as e:
            print("errno " + errno.errorcode.get(e.errno, str(e.errno)), flush=True)
