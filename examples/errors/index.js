// Seed scenario 6: errors thrown in RpcTarget methods, with custom properties.
export class ErrorTarget extends RpcTarget {
  async willFail() {
    throw new Error('Intentional failure');
  }

  async willThrowCustom() {
    const error = new Error('Custom error');
    error.code = 'CUSTOM_ERROR';
    error.details = { reason: 'testing' };
    throw error;
  }
}

export default { rpc: ErrorTarget };
