// Puts a server's 422 messages next to the fields they name, and anything else above the form.

export function showFieldErrors(container, formError, error, idPrefix = "") {
  for (const node of container.querySelectorAll(".field-error")) node.textContent = "";
  for (const node of container.querySelectorAll("[aria-invalid]")) {
    node.removeAttribute("aria-invalid");
  }
  formError.textContent = "";
  if (!error) return;
  const unplaced = [];
  for (const [field, message] of error.fieldErrors || []) {
    const slot = container.querySelector(`#${CSS.escape(`${idPrefix}error-${field}`)}`);
    const input = container.querySelector(`[name="${CSS.escape(field)}"]`);
    if (slot && field) {
      slot.textContent = message;
      if (input) input.setAttribute("aria-invalid", "true");
    } else {
      unplaced.push(field ? `${field}: ${message}` : message);
    }
  }
  formError.textContent = [error.message, ...unplaced].join(" ");
}
