#!/usr/bin/env python3
# A stand-in for systemd's file descriptor store (systemd.io/FILE_DESCRIPTOR_STORE, sd_notify(3),
# sd_listen_fds(3)), for tests: the notify socket of a "service" whose daemon it starts, kills and starts
# again, keeping what the daemon stores across those starts as systemd keeps it across a restart.
#
#   fd-store.py SOCKET [MAX]       SOCKET: path of the AF_UNIX datagram socket; MAX: FileDescriptorStoreMax
#
# Datagrams: FDSTORE=1 keeps the descriptors attached (SCM_RIGHTS) under FDNAME= (default "stored"), at
# most MAX in all (the rest are closed); FDSTOREREMOVE=1 closes those named FDNAME=. As systemd does
# (unless FDPOLL=0), a kept descriptor that reports POLLERR or POLLHUP is closed and dropped.
# Commands, one JSON object a line on stdin:
#   {"start": [argv...], "env": {...}, "stdout": PATH, "stderr": PATH, "preload": LIB}
#       runs argv with the kept descriptors as fds 3.., LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID (its own
#       pid, through `sh -c 'export LISTEN_PID=$$; exec "$@"'`), NOTIFY_SOCKET=SOCKET, and LD_PRELOAD=LIB
#       when given
#   {"list": true}       reports what is kept
#   {"release": true}    closes everything kept (systemd does so when the unit stops)
# Events, one JSON object a line on stdout: {"listening": SOCKET} first, then
#   {"message": {KEY: VALUE...}, "fds": N}, {"kept": [...]}, {"removed": [...]}, {"dropped": ..., "why": ...},
#   {"started": PID}, {"exited": PID, "code": C, "signal": S}, {"store": [{"name", "target", "fd"}]},
#   {"released": N}. Exits on stdin EOF.
import fcntl, json, os, select, signal, socket, subprocess, sys

name = sys.argv[1]
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 16
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(name)
store = []  # [{"name", "fd", "target", "poll"}] in the order stored
children = {}  # pidfd -> Popen
poller = select.poll()
poller.register(sock, select.POLLIN)
poller.register(sys.stdin, select.POLLIN)


def say(obj):
    print(json.dumps(obj), flush=True)


def target(fd):
    try:
        return os.readlink(f'/proc/self/fd/{fd}')
    except OSError:
        return '?'


def drop(entry, why):
    if entry['poll']:
        poller.unregister(entry['fd'])
    os.close(entry['fd'])
    store.remove(entry)
    say({'dropped': entry['name'], 'target': entry['target'], 'why': why})


def on_message():
    msg, fds, _, _ = socket.recv_fds(sock, 65536, 64)
    for fd in fds:
        os.set_inheritable(fd, False)
    state = dict(line.split('=', 1) for line in msg.decode().split('\n') if '=' in line)
    say({'message': state, 'fds': len(fds)})
    if state.get('FDSTORE') == '1':
        fdname = state.get('FDNAME', 'stored')
        poll = state.get('FDPOLL', '1') != '0'
        kept = []
        for fd in fds:
            if len(store) >= limit:
                os.close(fd)
                say({'refused': fdname, 'why': f'FileDescriptorStoreMax={limit}'})
                continue
            entry = {'name': fdname, 'fd': fd, 'target': target(fd), 'poll': poll}
            store.append(entry)
            if poll:
                poller.register(fd, 0)  # errors and hang-ups only
            kept.append(entry['target'])
        say({'kept': kept})
    else:
        for fd in fds:
            os.close(fd)
    if state.get('FDSTOREREMOVE') == '1':
        fdname = state.get('FDNAME')
        gone = [e for e in store if e['name'] == fdname]
        for e in gone:
            if e['poll']:
                poller.unregister(e['fd'])
            os.close(e['fd'])
            store.remove(e)
        say({'removed': [e['target'] for e in gone]})


def start(cmd):
    kept = list(store)

    def child_fds():
        # Copy every kept descriptor out of the way first (above 100), then to 3, 4, ... in store order.
        high = [fcntl.fcntl(e['fd'], fcntl.F_DUPFD, 100) for e in kept]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)
        for fd in high:
            os.close(fd)

    env = dict(os.environ)
    env.update(cmd.get('env', {}))
    env['NOTIFY_SOCKET'] = name
    if kept:
        env['LISTEN_FDS'] = str(len(kept))
        env['LISTEN_FDNAMES'] = ':'.join(e['name'] for e in kept)
    else:
        for key in ('LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PID'):
            env.pop(key, None)
    # The program gets LD_PRELOAD only if the command asks ("preload"): npm run test:sanitize preloads the
    # ASan runtime into node, and the shell in between must not get it.
    env.pop('LD_PRELOAD', None)
    if cmd.get('preload'):
        env['EXEC_PRELOAD'] = cmd['preload']
    argv = ['sh', '-c', 'export LISTEN_PID=$$; [ -z "$EXEC_PRELOAD" ] || export LD_PRELOAD="$EXEC_PRELOAD"; unset EXEC_PRELOAD; exec "$@"', 'sh'] + cmd['start']
    out = open(cmd['stdout'], 'ab') if cmd.get('stdout') else subprocess.DEVNULL
    err = open(cmd['stderr'], 'ab') if cmd.get('stderr') else subprocess.DEVNULL
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, close_fds=False, preexec_fn=child_fds)
    for f in (out, err):
        if f is not subprocess.DEVNULL:
            f.close()
    pidfd = os.pidfd_open(proc.pid)
    children[pidfd] = proc
    poller.register(pidfd, select.POLLIN)
    say({'started': proc.pid})


say({'listening': name})
buffered = b''
while True:
    for fd, events in poller.poll():
        if fd == sock.fileno():
            on_message()
        elif fd == sys.stdin.fileno():
            chunk = os.read(fd, 65536)
            if not chunk:
                for e in list(store):
                    os.close(e['fd'])
                sys.exit(0)
            buffered += chunk
            while b'\n' in buffered:
                line, buffered = buffered.split(b'\n', 1)
                cmd = json.loads(line)
                if 'start' in cmd:
                    start(cmd)
                elif cmd.get('list'):
                    say({'store': [{'name': e['name'], 'target': e['target'], 'fd': e['fd']} for e in store]})
                elif cmd.get('release'):
                    n = len(store)
                    for e in list(store):
                        if e['poll']:
                            poller.unregister(e['fd'])
                        os.close(e['fd'])
                        store.remove(e)
                    say({'released': n})
        elif fd in children:
            proc = children.pop(fd)
            poller.unregister(fd)
            os.close(fd)
            code = proc.wait()
            say({'exited': proc.pid, 'code': code if code >= 0 else None, 'signal': signal.Signals(-code).name if code < 0 else None})
        else:
            entry = next((e for e in store if e['fd'] == fd), None)
            if entry is not None and events & (select.POLLERR | select.POLLHUP):
                drop(entry, 'POLLERR' if events & select.POLLERR else 'POLLHUP')
