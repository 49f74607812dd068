# The test host of tests/network.rs, run in a network namespace the test made: TCP servers
# that answer "hello-PORT", and a DNS server that answers one name with one IPv4 address.
# Arguments: tcp=ADDR:PORT (any number), dns=ADDR, name=NAME. Prints "ready" once every socket
# is bound, then serves until its stdin closes.
import socket, struct, sys, threading

tcp, dns, name = [], None, None
for arg in sys.argv[1:]:
    key, value = arg.split("=", 1)
    if key == "tcp":
        host, port = value.rsplit(":", 1)
        tcp.append((host, int(port)))
    elif key == "dns":
        dns = value
    elif key == "name":
        name = value


def serve(sock, port):
    while True:
        conn, _ = sock.accept()
        conn.sendall(b"hello-%d\n" % port)
        conn.close()


for host, port in tcp:
    s = socket.socket(socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(16)
    threading.Thread(target=serve, args=(s, port), daemon=True).start()


def answer(sock):
    while True:
        query, peer = sock.recvfrom(512)
        question_end = query.index(b"\0", 12) + 5
        question = query[12:question_end]
        labels, i = [], 0
        while question[i]:
            labels.append(question[i + 1 : i + 1 + question[i]].decode())
            i += 1 + question[i]
        qtype = struct.unpack(">H", question[i + 1 : i + 3])[0]
        qname = ".".join(labels)
        head = query[:2]
        if qname == name and qtype == 1:
            record = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(dns)
            reply = head + b"\x81\x80" + struct.pack(">HHHH", 1, 1, 0, 0) + question + record
        else:
            flags = b"\x81\x80" if qname == name else b"\x81\x83"
            reply = head + flags + struct.pack(">HHHH", 1, 0, 0, 0) + question
        sock.sendto(reply, peer)


if dns:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((dns, 53))
    threading.Thread(target=answer, args=(u,), daemon=True).start()

print("ready", flush=True)
sys.stdin.read()
