/**
 * The registry client's public face: references, credentials and login, the client itself,
 * registry images as `Image` sources, and pushing images to a registry.
 */
export { parseRef, formatRef, refReference, withReference, isValidTag, isLoopbackHost, DOCKER_HUB, type ParsedRef } from './reference.js';
export { credentialsFor, saveLogin, dockerConfigPath, type Credentials, type CredentialOptions } from './credentials.js';
export { RegistryClient, MANIFEST_ACCEPT, type ClientOptions, type ManifestResult } from './client.js';
export { RemoteImage, RemoteIndex, resolvePlatformImage, type BlobCache, type BlobWriter, type RemoteOptions } from './remote-image.js';
export { pushImage, type PushEvent, type PushOptions, type PushResult } from './push.js';
export { selectPlatform, platformMatches, formatPlatform } from '../image/platform.js';
