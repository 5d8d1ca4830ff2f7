// What the daemon tells systemd under `Type=notify` (systemd/lxcfs-ts.service): READY=1 once the mount
// serves, STATUS= lines (shown by `systemctl status`), RELOADING=1 around SIGUSR1, STOPPING=1, and
// WATCHDOG=1 pings when the unit sets WatchdogSec=. The protocol is sd_notify(3); the datagram is sent by
// the binding (Fuse.sdNotify: Node has no unix datagram sockets). Without $NOTIFY_SOCKET (not started by
// systemd) every call does nothing.

import Fuse from 'fuse-native';
import type { Logger } from './logger.js';

/** Sends one sd_notify state; 0 when sent, an errno name when not, null without a notify socket. */
export type NotifySend = (state: string) => 0 | string | null;

export class SystemdNotifier {
  private watchdog: NodeJS.Timeout | undefined;
  private failed = false;

  constructor(
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly send: NotifySend = (state) => Fuse.sdNotify(state, [], env.NOTIFY_SOCKET),
  ) {}

  /** The mount serves: READY=1 with a STATUS line, and the watchdog starts if the unit asked for one. */
  ready(status: string): void {
    this.notify(`READY=1\nSTATUS=${oneLine(status)}\nMAINPID=${process.pid}`);
    this.startWatchdog();
  }

  status(status: string): void {
    this.notify(`STATUS=${oneLine(status)}`);
  }

  /** SIGUSR1 began (systemd ≥ 253 shows "reloading"); `ready` ends it. MONOTONIC_USEC is CLOCK_MONOTONIC in µs. */
  reloading(): void {
    this.notify(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
  }

  /**
   * FDSTORE=1: systemd keeps dups of `fds` under `name` and passes them to the next start
   * (src/daemon/fd-store.ts). 0 when sent, an errno name when not, null without a notify socket.
   */
  storeFds(name: string, fds: number[]): 0 | string | null {
    return Fuse.sdNotify(`FDSTORE=1\nFDNAME=${name}`, fds, this.env.NOTIFY_SOCKET);
  }

  /** FDSTOREREMOVE=1: systemd closes what it keeps under `name`. */
  removeFds(name: string): 0 | string | null {
    return Fuse.sdNotify(`FDSTOREREMOVE=1\nFDNAME=${name}`, [], this.env.NOTIFY_SOCKET);
  }

  stopping(): void {
    this.stopWatchdog();
    this.notify('STOPPING=1\nSTATUS=stopping');
  }

  /**
   * WATCHDOG_USEC (µs) set by systemd for this process (WATCHDOG_PID absent or ours): ping at half the
   * period, from the JavaScript thread, so a daemon whose event loop is stuck (every FUSE request waits on
   * it) stops pinging and systemd restarts it. Returns the period in ms, or undefined when there is none.
   */
  startWatchdog(): number | undefined {
    if (this.watchdog) return undefined;
    const usec = Number(this.env.WATCHDOG_USEC);
    const pid = this.env.WATCHDOG_PID;
    if (!Number.isInteger(usec) || usec <= 0 || (pid !== undefined && Number(pid) !== process.pid)) return undefined;
    const ms = Math.max(1, Math.floor(usec / 2000));
    this.notify('WATCHDOG=1');
    this.watchdog = setInterval(() => this.notify('WATCHDOG=1'), ms);
    this.watchdog.unref();
    return ms;
  }

  stopWatchdog(): void {
    clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private notify(state: string): void {
    const result = this.send(state);
    if (result === null || result === 0) return;
    // Logged once: a unit whose notify socket went away would otherwise log every watchdog ping.
    if (!this.failed) this.log.warn({ socket: this.env.NOTIFY_SOCKET, errno: result, state: state.split('\n')[0] }, 'sd_notify failed');
    this.failed = true;
  }
}

/** STATUS= is one line: a newline would start a new KEY=VALUE assignment. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, '; ');
}
