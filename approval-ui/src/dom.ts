/** The element with this id, which the page's HTML guarantees; a missing one throws when the page loads. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`approval page: #${id} is missing`);
  return element as T;
}

/**
 * Sets untrusted text (agent names, descriptions, vault keys…). Always textContent, never HTML:
 * everything the agent wrote is data, not markup.
 */
export function setText(element: HTMLElement, text: string): void {
  element.textContent = text;
}
