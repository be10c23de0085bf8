export { API_PREFIX, buildNodeApi, type NodeApiOptions } from './app.js';
export { API_ERRORS, ApiError, type ApiErrorCode } from './errors.js';
export { DEFAULT_LOGIN_LIMITS, type LoginLimits } from './sessions.js';
export { serveNodeApi, type ServeOptions, type RunningApi } from './server.js';
export { DEFAULT_API_LIMITS, type ApiLimits } from './limits.js';
