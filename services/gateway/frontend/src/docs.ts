// The API docs page: Swagger UI (vendored, loaded before this script) on the gateway's schema.
declare global {
  interface Window {
    SwaggerUIBundle?: (options: Record<string, unknown>) => unknown;
  }
}

window.SwaggerUIBundle?.({ url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true });

export {};
