// A minimal browser for session tests: one cookie jar, the CSRF token it was given, JSON calls.
export interface BrowserResponse {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

export class Browser {
  readonly base: string;
  cookies = new Map<string, string>();
  csrf: string | null = null;
  userAgent: string | undefined;

  constructor(base: string, userAgent?: string) {
    this.base = base;
    this.userAgent = userAgent;
  }

  cookieHeader(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** Raw Set-Cookie handling: remembers values, forgets cookies cleared with Max-Age=0. */
  absorb(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/max-age=0/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const next = headers.get('x-next-csrf-token');
    if (next) this.csrf = next;
  }

  async request(method: string, path: string, opts: { json?: unknown; form?: Record<string, string>; headers?: Record<string, string>; csrf?: boolean | string; redirect?: 'manual' | 'follow' } = {}): Promise<BrowserResponse> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    const cookie = this.cookieHeader();
    if (cookie) headers.cookie = cookie;
    if (this.userAgent) headers['user-agent'] = this.userAgent;
    if (opts.csrf === true && this.csrf) headers['x-csrf-token'] = this.csrf;
    else if (typeof opts.csrf === 'string') headers['x-csrf-token'] = opts.csrf;
    let body: string | undefined;
    if (opts.json !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.form !== undefined) {
      headers['content-type'] ??= 'application/x-www-form-urlencoded';
      body = new URLSearchParams(opts.form).toString();
    }
    const r = await fetch(this.base + path, { method, headers, body, redirect: opts.redirect ?? 'manual' });
    this.absorb(r.headers);
    const text = await r.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON
    }
    return { status: r.status, headers: r.headers, text, body: parsed };
  }

  async fetchCsrf(): Promise<string> {
    const r = await this.request('GET', '/csrf_token');
    if (r.status !== 200) throw new Error(`GET /csrf_token: ${r.status} ${r.text}`);
    this.csrf = r.body.csrf_token;
    return this.csrf!;
  }

  /** The web UI's sign-in: fetch a CSRF token, then POST /api/v1/signin with it. */
  async signIn(username: string, password: string): Promise<BrowserResponse> {
    if (!this.csrf) await this.fetchCsrf();
    return this.request('POST', '/api/v1/signin', { json: { username, password }, csrf: true });
  }
}
