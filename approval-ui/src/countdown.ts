/**
 * Counts down to a deadline on the monotonic clock, so that changing the device's wall clock
 * while the page is open neither extends nor cuts the time shown. The last tick is 0.
 */
export function startCountdown(remainingMs: number, onTick: (secondsLeft: number) => void): () => void {
  const deadline = performance.now() + remainingMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = (): void => {
    const left = deadline - performance.now();
    if (left <= 0) return onTick(0);
    onTick(Math.ceil(left / 1000));
    // Wake just after the next whole second boundary.
    timer = setTimeout(tick, (left % 1000) + 20);
  };
  tick();
  return () => clearTimeout(timer);
}

/** 9:05, or 1:02:03 for long lifetimes. */
export function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** "4 minutes 10 seconds", for screen readers and the status line. */
export function describeDuration(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  const parts: string[] = [];
  if (m > 0) parts.push(`${m} minute${m === 1 ? "" : "s"}`);
  if (s > 0 || m === 0) parts.push(`${s} second${s === 1 ? "" : "s"}`);
  return parts.join(" ");
}
