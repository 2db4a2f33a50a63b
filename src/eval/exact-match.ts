// exact_match as Vertex defines it: 1 when the prediction is the reference character for character,
// else 0. No normalisation (case, whitespace, punctuation): what is compared is what the model wrote.

export function exactMatch(prediction: string, reference: string): number {
  return prediction === reference ? 1 : 0;
}
