import type { FastifyInstance } from 'fastify';
import { actorOf } from './context.js';
import { AUTHED, DirectoryList, DirectoryQuery, errorResponses } from './schemas.js';

const security = [{ bearer: [] }];

/** The directory of trusted authorities and points of contact (`rogatory directory`). */
export function directoryRoutes(app: FastifyInstance): void {
  const { node } = app.nodeApi;
  app.get<{ Querystring: DirectoryQuery }>(
    '/directory',
    {
      schema: {
        tags: ['directory'],
        security,
        summary:
          'Authorities and points of contact of every trusted manifest, and authorities introduced to this node',
        querystring: DirectoryQuery,
        response: { 200: DirectoryList, ...errorResponses(...AUTHED) },
      },
    },
    (request) => {
      const q = request.query;
      return {
        entries: node.directory(actorOf(request), {
          ...(q.country === undefined ? {} : { country: q.country }),
          ...(q.network === undefined ? {} : { network: q.network }),
          ...(q.type === undefined ? {} : { type: q.type }),
          ...(q.language === undefined ? {} : { language: q.language }),
          ...(q.text === undefined ? {} : { text: q.text }),
        }),
      };
    },
  );
}
