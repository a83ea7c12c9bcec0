import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { shapeOf } from './request-shape.js';

/**
 * Request logs that carry the route pattern and the names of the query parameters, never a
 * URL: values travel in URLs (`GET /audit?token=199.172.111.135`, an IP typed into the token
 * filter; ids in paths). Fastify's own lines log `req.url`; these replace them, whatever
 * logger the app is given. A request that matched no route is logged without its path.
 */
export class RouteOnlyLogController extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return;
    request.log.info({ request: describe(request) }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    const line = { request: describe(request), res: reply, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }

  override defaultErrorLog(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    if (reply.statusCode >= 500) reply.log.error({ request: describe(request), res: reply, err: error }, error.message);
    else reply.log.info({ res: reply, err: error }, error.message);
  }

  override routeNotFound(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return;
    request.log.info({ request: describe(request) }, 'route not found');
  }

  override writeHeadError(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    reply.log.warn({ request: describe(request), res: reply, err: error }, error.message);
  }
}

function describe(request: FastifyRequest) {
  const { route, query, unknownQuery } = shapeOf(request);
  return {
    method: request.method,
    route,
    ...(query.length > 0 ? { query } : {}),
    ...(unknownQuery > 0 ? { other_query_parameters: unknownQuery } : {}),
    remoteAddress: request.ip,
  };
}
