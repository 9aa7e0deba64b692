/** The page's one status line (polite) and one error line (alert). */
export interface Feedback {
  status(text: string): void;
  error(text: string): void;
  clear(): void;
}

export function feedbackLines(): Feedback {
  const status = document.getElementById("status") as HTMLElement;
  const error = document.getElementById("error") as HTMLElement;
  return {
    status(text) {
      error.textContent = "";
      status.textContent = text;
    },
    error(text) {
      status.textContent = "";
      error.textContent = text;
    },
    clear() {
      status.textContent = "";
      error.textContent = "";
    },
  };
}
