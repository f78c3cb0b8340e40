// Starts Swagger UI on /docs. A file rather than an inline script, so the pages' CSP
// (script-src 'self') holds here too; every asset comes from this service, none from a CDN.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
  });
});
