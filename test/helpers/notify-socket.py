#!/usr/bin/env python3
# A stand-in for systemd's notify socket (sd_notify(3)): binds an AF_UNIX datagram socket at argv[1]
# ("@name" = abstract) and prints one JSON line per datagram: {"state": {...KEY: VALUE}, "fds": [targets]}
# (descriptors received as SCM_RIGHTS are described by their /proc/self/fd link, then closed).
# With argv[2] (a path), each line also says whether that path existed when the datagram arrived
# ("exists"): READY=1 must come only once the mount serves. Prints {"listening": NAME} first. Exits on
# SIGTERM or stdin EOF.
import json, os, select, socket, sys

name = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind('\0' + name[1:] if name.startswith('@') else name)
print(json.dumps({'listening': name}), flush=True)
while True:
    ready, _, _ = select.select([sock, sys.stdin], [], [])
    if sys.stdin in ready and not sys.stdin.buffer.read1(4096):
        break
    if sock in ready:
        msg, fds, _, _ = socket.recv_fds(sock, 65536, 16)
        targets = []
        for fd in fds:
            targets.append(os.readlink(f'/proc/self/fd/{fd}'))
            os.close(fd)
        state = dict(line.split('=', 1) for line in msg.decode().split('\n') if '=' in line)
        line = {'state': state, 'fds': targets}
        if len(sys.argv) > 2:
            line['exists'] = os.path.exists(sys.argv[2])
        print(json.dumps(line), flush=True)
