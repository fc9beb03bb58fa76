import { spawn } from "node:child_process";
import * as path from "node:path";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The built `mycelium` command. */
export function cliPath(): string {
  return path.join(path.dirname(require.resolve("@mycelium/cli/package.json")), "dist", "main.js");
}

/** Run `mycelium <args>` to completion (bounded by timeoutMs) and capture its output. */
export function runCli(args: string[], options: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  return runProcess(process.execPath, [cliPath(), ...args], options);
}

/**
 * Run a command to completion (bounded by timeoutMs, then SIGKILL and a rejection) with PATH and `env` only, and
 * capture its output.
 */
export function runProcess(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number; input?: string; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { PATH: process.env.PATH ?? "", ...options.env }, stdio: ["pipe", "pipe", "pipe"], ...(options.cwd ? { cwd: options.cwd } : {}) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command} ${args.join(" ")} did not finish in ${options.timeoutMs ?? 60_000} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? "");
  });
}
