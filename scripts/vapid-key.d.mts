export function vapidKeyPair(): { privateJwk: string };
