import type { z } from 'zod';
import { type ErrorCode, isRatchetRelayError, RatchetRelayError } from '../errors.js';
import { API, type FollowEvent, type Method, type MethodSpec, type Params, type Result, type Stream } from './api.js';
import type { NodeService } from './node-service.js';

// One request, validated and answered: the daemon and the in-process path both come through here

export const RPC_ERROR = { parse: -32700, invalidRequest: -32600, noMethod: -32601, invalidParams: -32602, internal: -32603, application: -32000 } as const;

export interface RpcError {
  code: number;
  message: string;
  data?: { code: ErrorCode | 'INTERNAL' };
}
export type RpcResponse = { result: unknown } | { error: RpcError };

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

function isMethod(name: unknown): name is Method {
  return typeof name === 'string' && Object.hasOwn(API, name);
}

/** Validates `params` against the table, runs the handler, validates its result; errors become JSON-RPC errors. */
export async function respond(
  s: NodeService,
  method: unknown,
  params: unknown,
  log: (line: string) => void,
  stream?: Stream,
): Promise<RpcResponse> {
  if (!isMethod(method)) return { error: { code: RPC_ERROR.noMethod, message: `no method ${JSON.stringify(method)}: see docs/protocol.md, "Daemon JSON-RPC"` } };
  const spec = API[method] as unknown as MethodSpec<z.ZodObject, z.ZodType>;
  const p = spec.params.safeParse(params ?? {});
  if (!p.success) return { error: { code: RPC_ERROR.invalidParams, message: `invalid params for ${method}: ${describeIssues(p.error)}` } };
  let value: unknown;
  try {
    value = await spec.handler(s, p.data, stream);
  } catch (e) {
    if (isRatchetRelayError(e)) return { error: { code: RPC_ERROR.application, message: e.message, data: { code: e.code } } };
    log(`rpc ${method}: ${e instanceof Error ? e.stack : String(e)}`);
    return { error: { code: RPC_ERROR.internal, message: `internal error in ${method}: ${e instanceof Error ? e.message : String(e)}`, data: { code: 'INTERNAL' } } };
  }
  const r = spec.result.safeParse(value);
  if (!r.success) {
    log(`rpc ${method}: result does not match its schema: ${describeIssues(r.error)}`);
    return { error: { code: RPC_ERROR.internal, message: `internal error in ${method}: its result does not match the schema`, data: { code: 'INTERNAL' } } };
  }
  return { result: r.data };
}

/** The caller's side of a response: the result, or the error as the CLI knows it (RatchetRelayError where it has a code). */
export function unwrap(response: RpcResponse): unknown {
  if ('result' in response) return response.result;
  const { code, message, data } = response.error;
  if (code === RPC_ERROR.invalidParams) throw new RatchetRelayError('INVALID_ARGUMENT', message);
  if (data?.code && data.code !== 'INTERNAL') throw new RatchetRelayError(data.code, message);
  throw new Error(message);
}

/** JSON in, JSON out: what crosses the socket, so that the in-process path returns exactly the same values. */
export function viaJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

// The client side, whichever path: call a method by name with its named params

type ParamArgs<M extends Method> = {} extends Params<M> ? [params?: Params<M>] : [params: Params<M>];

export abstract class ApiClient {
  /** Sends one request; resolves with the response, parsed from JSON. */
  protected abstract request(method: Method, params: object): Promise<RpcResponse>;
  /** Starts the `follow` stream; the returned function stops it. */
  abstract follow(onEvent: (e: FollowEvent) => void): Promise<() => void>;
  abstract close(): Promise<void>;

  async call<M extends Method>(method: M, ...[params]: ParamArgs<M>): Promise<Result<M>> {
    return unwrap(await this.request(method, params ?? {})) as Result<M>;
  }
}

/** The in-process path: the same `respond` as the daemon, and the result through JSON as the daemon sends it. */
export class LocalApi extends ApiClient {
  private readonly stops: (() => void)[] = [];

  constructor(
    readonly service: NodeService,
    private readonly log: (line: string) => void = () => {},
  ) {
    super();
  }

  protected async request(method: Method, params: object): Promise<RpcResponse> {
    return viaJson(await respond(this.service, method, viaJson(params), this.log));
  }

  async follow(onEvent: (e: FollowEvent) => void): Promise<() => void> {
    const stream: Stream = { emit: (e) => onEvent(viaJson(e)), onEnd: (stop) => this.stops.push(stop) };
    unwrap(viaJson(await respond(this.service, 'follow', {}, this.log, stream)));
    return () => {
      for (const stop of this.stops.splice(0)) stop();
    };
  }

  async close(): Promise<void> {
    for (const stop of this.stops.splice(0)) stop();
    await this.service.close();
  }
}
