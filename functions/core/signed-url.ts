/**
 * What a signed request looks like to the client, the same for GCS and the
 * local bucket: the method, and the headers it must send verbatim because the
 * signature covers them (GCS's XML API names, so one client serves both).
 */
import type { SignedUrlOptions } from './ports.js';

export const signedMethod = (action: SignedUrlOptions['action']): 'GET' | 'POST' => (action === 'read' ? 'GET' : 'POST');

/** Lower-case header names, as both signatures canonicalize them. */
export function signedHeaders(options: SignedUrlOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  if (options.action === 'resumable') headers['x-goog-resumable'] = 'start';
  if (options.contentType !== undefined) headers['content-type'] = options.contentType;
  if (options.contentLength !== undefined) headers['x-upload-content-length'] = String(options.contentLength);
  if (options.ifGenerationMatch !== undefined) headers['x-goog-if-generation-match'] = options.ifGenerationMatch;
  return headers;
}
