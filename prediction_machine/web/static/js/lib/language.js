// The page's language: the one the learner picked from the masthead's list (remembered in this browser),
// or on a first visit the first of the browser's own languages that the page has words for, or English.
//
// It runs before any module that formats a number or loads words (format.js imports it), and sets
// <html lang> and dir: Arabic reads right to left, so the page mirrors; figures whose axes read left
// to right keep that order (css/rtl.css). Changing the language reloads the page, so every section
// draws itself once, in one language, from the start.
//
// The model's own text is never translated: a token, a prompt or an answer is what the model read or
// wrote, and it shows as it is in every language.

// The languages the page has words for (static/content/<code>/), each named in its own language. Numbers
// are written with the language's separators; Arabic's keep Western digits, as the figures' axes and
// fixed decimals are written, so one page never mixes two kinds of digits.
export const LANGUAGES = {
  en: { name: "English", dir: "ltr" },
  es: { name: "Español", dir: "ltr" },
  ar: { name: "العربية", dir: "rtl", numbers: "ar-u-nu-latn" },
};

const KEY = "prediction-machine:language";

// The language to show: a remembered choice, else the first preferred language we have ("es-MX" counts
// as "es"), else English. choose(null, ["fr-FR", "es-MX", "en"]) -> "es".
export function choose(remembered, preferred) {
  if (remembered in LANGUAGES) return remembered;
  for (const tag of preferred || []) {
    const code = String(tag).toLowerCase().split("-")[0];
    if (code in LANGUAGES) return code;
  }
  return "en";
}

function remembered() {
  try { return localStorage.getItem(KEY); } catch { return null; }  // storage can be switched off
}

// Only this guide's own page carries the picker; anywhere else (a notebook's output, say) the host
// document is left untouched, and its language is used where the page has words for it.
const picker = document.getElementById("language");
const root = document.documentElement;

export const LANGUAGE = picker ? choose(remembered(), navigator.languages || [navigator.language])
  : choose(null, [root.lang]);

// The locale Intl formats numbers with ("ar" -> "ar-u-nu-latn").
export const NUMBERS = LANGUAGES[LANGUAGE]?.numbers || LANGUAGE;

if (picker) {
  root.lang = LANGUAGE;
  root.dir = LANGUAGES[LANGUAGE]?.dir || "ltr";
  for (const [code, { name, dir }] of Object.entries(LANGUAGES)) {
    const option = document.createElement("option");
    Object.assign(option, { value: code, lang: code, dir, textContent: name });
    picker.append(option);
  }
  picker.value = LANGUAGE;
  picker.addEventListener("change", () => {
    try { localStorage.setItem(KEY, picker.value); } catch { return; }  // nowhere to remember it: stay
    location.reload();
  });
}
