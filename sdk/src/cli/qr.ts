import qrcode from "qrcode-terminal";

/** A QR code of `text` drawn with half-block characters (two modules a character row). */
export function renderQr(text: string): string {
  let out = "";
  qrcode.generate(text, { small: true }, (drawing: string) => {
    out = drawing;
  });
  return out;
}
