/** Time left as m:ss. */
export function formatLeft(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

/**
 * A one-line countdown on stderr while waiting. On a terminal it redraws every second; elsewhere
 * (logs, pipes) it prints one line, so logs are not flooded.
 */
export function startCountdown(expiresAt: Date, stream: NodeJS.WriteStream): () => void {
  const line = () => `Waiting for approval… ${formatLeft(expiresAt.getTime() - Date.now())} left (Ctrl-C to stop)`;
  if (!stream.isTTY) {
    stream.write(`${line()}\n`);
    return () => undefined;
  }
  stream.write(line());
  const timer = setInterval(() => stream.write(`\r\x1b[2K${line()}`), 1000);
  return () => {
    clearInterval(timer);
    stream.write("\r\x1b[2K");
  };
}
