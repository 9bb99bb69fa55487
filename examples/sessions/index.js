// Seed scenario 4: a method returns an RpcStub for further calls.
import { RpcTarget, RpcStub } from 'cloudflare:workers';

class SessionTarget extends RpcTarget {
  constructor(sessionId) {
    super();
    this.sessionId = sessionId;
    this.data = {};
  }

  async set(key, value) {
    this.data[key] = value;
    return true;
  }

  async get(key) {
    return this.data[key];
  }

  async getSessionId() {
    return this.sessionId;
  }
}

export class SessionManager extends RpcTarget {
  async createSession(userId) {
    const session = new SessionTarget(`session-${userId}-${Date.now()}`);
    return new RpcStub(session); // Return stub for further calls
  }
}

export default { rpc: SessionManager };
