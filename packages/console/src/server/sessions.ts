import { randomBytes, timingSafeEqual, createHash } from "node:crypto";

/**
 * Sessions opened with the admin token. The browser holds only a random session id in an HttpOnly,
 * SameSite=Strict cookie; the token itself is compared in constant time and never stored in the page.
 * Bounded: at most `maxSessions` live sessions (the oldest goes first), each for `ttlMs`, and at most
 * `maxAttemptsPerMinute` sign-in attempts, so the token cannot be guessed by trying.
 */
export class TokenSessions {
  private readonly sessions = new Map<string, number>();
  private readonly tokenDigest: Buffer | null;
  private attempts: number[] = [];

  constructor(
    token: string | null,
    private readonly options: { ttlMs: number; maxSessions: number; maxAttemptsPerMinute: number } = { ttlMs: 12 * 3600_000, maxSessions: 256, maxAttemptsPerMinute: 20 },
  ) {
    if (token !== null && token.length < 16) throw new Error("the admin token must be at least 16 characters long");
    this.tokenDigest = token === null ? null : digest(token);
  }

  get enabled(): boolean {
    return this.tokenDigest !== null;
  }

  /** A new session id for the right token; "wrong" or "throttled" otherwise. */
  signIn(token: unknown, nowMs: number): { sessionId: string } | "wrong" | "throttled" | "disabled" {
    if (!this.tokenDigest) return "disabled";
    this.attempts = this.attempts.filter((at) => nowMs - at < 60_000);
    if (this.attempts.length >= this.options.maxAttemptsPerMinute) return "throttled";
    this.attempts.push(nowMs);
    if (typeof token !== "string" || !timingSafeEqual(digest(token), this.tokenDigest)) return "wrong";
    const sessionId = randomBytes(32).toString("base64url");
    this.sessions.set(sessionId, nowMs + this.options.ttlMs);
    while (this.sessions.size > this.options.maxSessions) this.sessions.delete(this.sessions.keys().next().value as string);
    return { sessionId };
  }

  valid(sessionId: string | undefined, nowMs: number): boolean {
    if (!sessionId) return false;
    const expires = this.sessions.get(sessionId);
    if (expires === undefined) return false;
    if (expires <= nowMs) {
      this.sessions.delete(sessionId);
      return false;
    }
    return true;
  }

  signOut(sessionId: string | undefined): void {
    if (sessionId) this.sessions.delete(sessionId);
  }
}

/** Equal-length digests, so the comparison takes the same time whatever was sent. */
function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

export function newAdminToken(): string {
  return randomBytes(24).toString("base64url");
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return undefined;
}
