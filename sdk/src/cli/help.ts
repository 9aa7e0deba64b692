export const HELP = `keyferry - ask your operator for a credential and keep it in an end-to-end encrypted vault

Usage:
  keyferry init [--force]
  keyferry request --description TEXT --vault-key NAME [--timeout SECONDS] [--no-e2e] [--no-qr]
  keyferry get NAME
  keyferry list
  keyferry delete NAME
  keyferry run --secret ENV_NAME=NAME [--secret ...] -- COMMAND [ARGS...]
  keyferry mcp [--allow-run] [--elicitation auto|url|none]

Commands:
  init      Create a master seed file (mode 0600). It encrypts your vault; back it up, never share it.
  request   Ask the operator for a credential, wait for approval, store it in the vault as NAME.
  get       Print a vault item's value to stdout.
  list      List vault item names and update times.
  delete    Delete a vault item.
  run       Run COMMAND with vault items in its environment; exits with its exit code.
  mcp       Serve the Model Context Protocol over stdio, 2025-11-25 and 2026-07-28 (tools
            request_credential, wait_for_credential, list_credentials; run_with_credentials with
            --allow-run, whose commands run as your own user). --elicitation: show the approval URL by
            URL elicitation when the client declares it (auto), also when it does not (url: 2025-11-25
            clients only), or never (none). See the README.

Options (every command):
  --url URL             Keyferry server                 (env KEYFERRY_URL)
  --api-key KEY         the agent's API key             (env KEYFERRY_API_KEY; prefer the env)
  --seed-file PATH      master seed file                (env KEYFERRY_SEED_FILE,
                                                         default ~/.config/keyferry/seed)
  -h, --help            show this help
  --version             show the version

Exit codes:
  0 ok; 1 usage or configuration error; 2 denied by the operator; 3 request expired or already used;
  4 network or server error; 5 timed out; 6 vault item not found; 7 decryption failed (wrong seed or
  altered ciphertext); 8 API key refused; 70 internal error; 130 interrupted. run: the command's own code
  (126 not executable, 127 not found, 128+N killed by signal N).
`;
