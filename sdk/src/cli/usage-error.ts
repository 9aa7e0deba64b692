import { EXIT } from "./exit-codes";

/** A failure the CLI reports as one line on stderr with a given exit code (no stack trace). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.USAGE,
  ) {
    super(message);
  }
}
