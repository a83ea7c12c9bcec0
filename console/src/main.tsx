import { render } from 'preact';
import { App } from './app.js';
import { boot } from './sign-in.js';

const root = document.getElementById('app');
if (root !== null) {
  boot()
    .catch((error: unknown) => {
      root.textContent = `The console could not start: ${error instanceof Error ? error.message : String(error)}`;
      throw error;
    })
    .then(
      () => {
        root.replaceChildren();
        render(<App />, root);
      },
      () => undefined,
    );
}
