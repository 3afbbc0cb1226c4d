// The launch panel: one "Train <variant>" button per variant and a form built from
// GET /api/variants. A button launches its variant with the variant's defaults plus whatever
// the user typed into the form; server validation errors appear next to their fields.
import { api } from "./api.js";
import { element, clear, humanizeName, formatNumber } from "./dom.js";
import { showFieldErrors } from "./form_errors.js";

const LEADING_FIELDS = ["name", "dataset"];

function boundText(value) {
  return Number.isInteger(value) && Math.abs(value) < 1e7 ? String(value) : formatNumber(value);
}

function boundsText(parameter) {
  const parts = [];
  if (parameter.minimum !== null && parameter.minimum !== undefined) {
    parts.push(`${parameter.exclusive_minimum ? ">" : "≥"} ${boundText(parameter.minimum)}`);
  }
  if (parameter.maximum !== null && parameter.maximum !== undefined) {
    parts.push(`${parameter.exclusive_maximum ? "<" : "≤"} ${boundText(parameter.maximum)}`);
  }
  return parts.join(", ");
}

function orderedParameters(variant) {
  const leading = LEADING_FIELDS.map((name) => variant.parameters.find((p) => p.name === name));
  const rest = variant.parameters.filter((p) => !LEADING_FIELDS.includes(p.name));
  return [...leading.filter(Boolean), ...rest];
}

function inputFor(parameter, value) {
  const common = { id: `field-${parameter.name}`, name: parameter.name,
    "aria-describedby": `hint-${parameter.name} error-${parameter.name}` };
  if (parameter.choices) {
    return element("select", common, parameter.choices.map((choice) =>
      element("option", { value: choice, text: choice, selected: String(choice) === value })));
  }
  if (parameter.type === "integer" || parameter.type === "number") {
    return element("input", { ...common, type: "number", value, inputmode: "decimal",
      step: parameter.type === "integer" ? 1 : "any",
      min: parameter.minimum ?? undefined, max: parameter.maximum ?? undefined });
  }
  return element("input", { ...common, type: "text", value, maxlength: 200,
    placeholder: parameter.name === "name" ? "optional label" : undefined });
}

function valueFor(parameter, raw) {
  if (parameter.type === "string" || parameter.choices) return raw;
  if (raw.trim() === "") return null;
  const number = Number(raw);
  // Anything that is not a number goes to the server as typed, which answers with a sentence.
  return Number.isFinite(number) ? number : raw;
}

export function mountLaunchForm(root, { variants, onLaunched, notify }) {
  const byName = new Map(variants.map((variant) => [variant.name, variant]));
  const edited = new Map();
  let current = variants.find((variant) => variant.name === "selu") || variants[0];

  const buttons = element("div", { className: "launch-buttons" });
  const variantSelect = element("select", { id: "field-variant", name: "variant" },
    variants.map((variant) => element("option", { value: variant.name, text: variant.title })));
  const description = element("p", { className: "variant-description" });
  const fields = element("div", { className: "fields" });
  const formError = element("p", { className: "form-error", id: "launch-error", role: "alert" });
  const submit = element("button", { type: "submit", className: "primary", text: "Launch" });
  const reset = element("button", { type: "button", text: "Reset to defaults" });
  const form = element("form", { id: "launch-form", novalidate: true }, [
    element("div", { className: "field" }, [
      element("label", { for: "field-variant", text: "variant" }), variantSelect]),
    description, fields, formError,
    element("div", { className: "form-actions" }, [submit, reset]),
  ]);
  root.append(buttons, form);

  const render = () => {
    variantSelect.value = current.name;
    description.textContent = current.description;
    clear(fields);
    for (const parameter of orderedParameters(current)) {
      const value = edited.has(parameter.name)
        ? edited.get(parameter.name)
        : String(parameter.default ?? "");
      const input = inputFor(parameter, value);
      input.addEventListener("input", () => edited.set(parameter.name, input.value));
      input.addEventListener("change", () => edited.set(parameter.name, input.value));
      fields.append(element("div", { className: "field", dataset: { field: parameter.name } }, [
        element("label", { for: input.id, text: humanizeName(parameter.name) }),
        input,
        element("small", { className: "hint", id: `hint-${parameter.name}`,
          text: [boundsText(parameter), parameter.description].filter(Boolean).join(" · ") }),
        element("span", { className: "field-error", id: `error-${parameter.name}`,
          role: "alert" }),
      ]));
    }
  };

  const showErrors = (error) => showFieldErrors(fields, formError, error);

  const collect = () => {
    const spec = { variant: current.name };
    for (const parameter of current.parameters) {
      const input = fields.querySelector(`#field-${CSS.escape(parameter.name)}`);
      spec[parameter.name] = valueFor(parameter, input.value);
    }
    return spec;
  };

  const launch = async () => {
    showErrors(null);
    submit.disabled = true;
    try {
      const run = await api.createRun(collect());
      onLaunched(run);
    } catch (error) {
      showErrors(error);
      if (error.status !== 422) notify(error.message, "error");
    } finally {
      submit.disabled = false;
    }
  };

  const chooseVariant = (name) => {
    if (!byName.has(name) || name === current.name) return;
    current = byName.get(name);
    render();
    showErrors(null);
  };

  for (const variant of variants) {
    buttons.append(element("button", {
      type: "button", className: "launch", dataset: { variant: variant.name },
      text: `Train ${variant.title}`, title: variant.description,
      onclick: () => { chooseVariant(variant.name); launch(); },
    }));
  }
  variantSelect.addEventListener("change", () => chooseVariant(variantSelect.value));
  form.addEventListener("submit", (event) => { event.preventDefault(); launch(); });
  reset.addEventListener("click", () => { edited.clear(); render(); showErrors(null); });
  render();

  return {
    // Puts a learning rate found by the range test into the form, for that variant.
    useLearningRate(variantName, rate) {
      chooseVariant(variantName);
      const field = current.parameters.find((p) => p.name === "learning_rate")
        || current.parameters.find((p) => p.name === "peak_learning_rate");
      if (!field) return;
      const value = Number(rate.toPrecision(3)).toString();
      edited.set(field.name, value);
      render();
      const input = fields.querySelector(`#field-${field.name}`);
      input.focus();
      input.classList.add("flash");
      setTimeout(() => input.classList.remove("flash"), 1200);
    },
    defaultsOf(variantName) {
      const variant = byName.get(variantName);
      return variant ? Object.fromEntries(variant.parameters.map((p) => [p.name, p.default])) : {};
    },
  };
}
