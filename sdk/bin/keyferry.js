#!/usr/bin/env node
// The `keyferry` bin. It lives outside dist/ so that a workspace install (`npm ci` at the repository
// root) can link it before the root's `prepare` script has built dist/cli.js.
import "../dist/cli.js";
