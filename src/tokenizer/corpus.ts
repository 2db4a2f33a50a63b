// The built-in training text for the tiny test tokenizers (bpe-trainer.ts). Original prose written for
// this project, no third-party text. It mixes everyday English, numbers, JSON, code and a little
// non-ASCII so the learned merges cover the shapes that tests and chat templates use.
// Rule: editing this text changes every generated tiny tokenizer (and so every fixture built on one).

export const TRAINING_CORPUS = `
Cooking at home is easier than most people think. Start with a hot pan, a little oil and an onion cut
into thin slices. Let the onion soften for five minutes, then add two cloves of garlic and a pinch of
salt. When the kitchen smells sweet, pour in a can of tomatoes and let the sauce simmer for twenty
minutes. Taste it, add pepper, and stir in a handful of fresh basil just before serving.

To bake bread you need flour, water, salt and yeast. Mix 500 grams of flour with 350 grams of warm
water, 10 grams of salt and 7 grams of dry yeast. Knead the dough for ten minutes until it is smooth,
cover it, and leave it to rise for one hour. Shape the loaf, let it rest again, and bake it at 230
degrees for about 35 minutes. The crust should sound hollow when you tap the bottom.

A good soup starts with a good stock. Roast the bones, cover them with cold water, and keep the pot
just below a boil for three hours. Skim the foam, strain the liquid, and season it at the end, not at
the beginning. Vegetables, rice or noodles can go in later; each one needs its own time.

The weather today is cloudy with a chance of rain in the afternoon. Temperatures will reach 18 degrees
in the city and 14 degrees along the coast. Tomorrow the wind turns north and the sky clears, but the
nights stay cold: expect frost in the valleys before sunrise. By the weekend it should be sunny and
warm again, with highs near 24 degrees and a light breeze from the west.

It rained all night, and the streets were still wet in the morning. The river rose by half a metre,
the buses ran late, and everyone at the office talked about the storm. Weather forecasts are better
than they used to be, yet nobody can say exactly when the first drop will fall.

Numbers are everywhere. One, two, three, four, five, six, seven, eight, nine, ten. Eleven plus
twelve is twenty-three. The year has 365 days, 52 weeks and 12 months. A kilometre is 1000 metres and
a mile is about 1609 metres. Pi is roughly 3.14159, and the square root of 2 is close to 1.41421.
Prices went from $4.99 to $5.49, an increase of 10%. Call 555-0123 between 9:00 and 17:30.
The order number is 20240517-0042, the total is 128.75 and the discount code is SAVE15.

Questions and answers: What is the capital of France? It is Paris. How many legs does a spider have?
It has eight. Why is the sky blue? Because air scatters blue light more than red light. Who wrote
this text? A small program's authors did, for testing. Can you help me? Yes, of course I can help you.
I'm happy to explain. You're welcome. We've finished the list. They'll arrive at noon. She'd like tea.
It's late, isn't it? Don't worry, we won't forget. I'd say the answer's clear.

The user asked the assistant to summarise an article. The assistant read the article, picked out the
three main points and wrote a short summary. Then the user asked a follow-up question, and the
assistant answered it in one sentence. A helpful assistant is honest, clear and brief; when it does
not know something, it says so instead of making things up.

{"name": "tomato soup", "servings": 4, "vegetarian": true, "ingredients": ["tomatoes", "onion",
"garlic", "basil", "salt"], "time_minutes": 45, "rating": 4.5, "tags": null}
{"city": "Lisbon", "temperature": 21.5, "humidity": 0.64, "conditions": "sunny", "wind": {"speed":
12, "direction": "NW"}, "forecast": [{"day": "Mon", "high": 23, "low": 15}, {"day": "Tue", "high":
19, "low": 13}]}
{"id": 42, "role": "user", "content": "Hello, how are you?", "ok": false, "items": [], "next": null}

function add(a, b) {
  return a + b;
}

const total = items.reduce((sum, item) => sum + item.price * item.count, 0);
if (total > 100) {
  console.log("free shipping");
} else {
  console.log("shipping costs " + (100 - total).toFixed(2));
}

def mean(values):
    if not values:
        return 0.0
    return sum(values) / len(values)

for i in range(10):
    print(i, i * i)

class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        return self.items.pop()

SELECT name, count(*) AS orders FROM customers JOIN orders ON orders.customer_id = customers.id
WHERE orders.created_at >= '2024-01-01' GROUP BY name ORDER BY orders DESC LIMIT 10;

for (let i = 0; i < n; i++) { out[i] = x[i] * w[i] + b; }
while (queue.length > 0) { const node = queue.shift(); visit(node); }
export interface Point { x: number; y: number }
let message = \`Hello, \${name}! You have \${count} new messages.\`;

The garden needs water every second day in summer. Tomatoes like sun, lettuce likes shade, and the
mint grows everywhere if you let it. In autumn the leaves fall, the apples ripen and the evenings get
shorter. Winter is quiet: the soil rests, and the seeds wait for spring.

Travel notes: the train left at 07:45 and arrived at 11:20. The hotel was near the old market, where
people sold cheese, bread, olives and flowers. In the evening we walked by the river, ate grilled fish
and watched the lights come on across the water. The next morning it was raining, so we visited the
museum, the library and a small café that served excellent coffee.

Some words from other languages appear in English too: café, naïve, façade, déjà vu, jalapeño,
crème brûlée, über, smörgåsbord. Greek letters: α, β, γ, δ, π, Ω. Arrows and symbols: → ← ✓ € £ ° ±.
A few emoji: 🙂 👍 🍅 ☀️ 🌧️ 🎉. Chinese: 你好，世界。Japanese: こんにちは。Russian: привет, мир.

Good morning! Good afternoon. Good evening... Good night? Thank you very much; see you soon.
"Quoted text" and 'single quotes', (parentheses), [brackets], {braces}, <angle brackets>.
Lists: first, second, third; then fourth - fifth - sixth. Email: someone@example.com, web:
https://example.com/path?query=1&limit=20#section. Paths: /usr/local/bin and C:\\Temp\\notes.txt.

Step 1: read the question carefully. Step 2: think about what is being asked. Step 3: write the
answer in plain words. Step 4: check the answer against the question. If the numbers do not add up,
go back to step 2 and try again. Let me think step by step: 17 times 3 is 51, plus 9 is 60.

The model was trained for 3 epochs with a learning rate of 0.0002, a batch size of 8 and a LoRA rank
of 16. The training loss fell from 2.31 to 0.87, and the validation loss settled at 1.02. After
training, the adapter was merged into the base weights and exported for inference.

Morning routine: wake up at six, drink a glass of water, stretch for five minutes, make coffee, read
the news, and write down three things to do today. Evening routine: tidy the desk, plan tomorrow,
read a book, and turn off the screens an hour before sleep.

The library opens at nine and closes at eight, except on Sundays when it is closed all day. Members
may borrow up to ten books for three weeks. Late returns cost twenty cents per book per day. The
reading room is on the second floor, and the children's section is next to the main entrance.

Dear team, thank you for the hard work this month. The new release ships on Friday, the tests are
green, and the documentation is up to date. Please review the open pull requests before Thursday.
Best regards, and have a nice weekend.

Shopping list for the week: milk, eggs, butter, cheese, yogurt, carrots, potatoes, spinach, lemons,
oranges, bananas, chicken, beans, lentils, oats, honey, coffee and a bag of flour. Remember to bring
the reusable bags, check the prices, and compare the weight of the packages before buying anything.

Machine learning in one paragraph: a model maps inputs to outputs through millions of parameters. The
training loop feeds a batch of examples forward, measures the error with a loss function, computes
gradients by backpropagation, and nudges every parameter a little against its gradient. Repeat this
thousands of times and the error usually shrinks. Attention layers let each token look at the other
tokens; feed-forward layers transform each position independently; normalization keeps the values in
a sensible range. Tokenizers split text into pieces, embeddings turn pieces into vectors, and the
output layer scores every piece of the vocabulary to predict what comes next.

Physics facts: light travels about 299,792 kilometres per second. Water boils at 100 degrees Celsius
at sea level and freezes at 0. The Earth orbits the Sun once every 365.25 days, and the Moon orbits the
Earth roughly every 27.3 days. Sound is much slower than light, about 343 metres per second in air.

A short dialogue. "Where are you going?" asked the baker. "To the harbour," said the girl, "my uncle's
boat comes back today." "Take this loaf for him, then. Fishermen are always hungry." She thanked him,
wrapped the bread in her scarf, and hurried down the hill while the gulls circled overhead.

Instructions for the washing machine: sort the clothes by colour, check the pockets, and close the
zips. Choose the programme, set the temperature to 30 or 40 degrees, add detergent to the drawer and
press start. Do not open the door until the light turns green. Dry wool flat, never in the dryer.

Version history: 0.1.0 added the first parser; 0.2.0 fixed the unicode handling; 0.3.0 introduced
streaming output; 0.4.1 improved performance by 35 percent; 1.0.0 stabilised the public interface.
Known issues: very long lines wrap badly on narrow terminals, and the progress bar flickers on Windows.

Sports report: the home team won the match 3-1 after a slow first half. The visitors scored first,
but two quick goals after the break changed everything, and a late penalty sealed the result. The
coach praised the defence, the fans sang until the final whistle, and the next game is on Wednesday.

Health tips: walk for thirty minutes a day, drink enough water, eat vegetables with every meal, sleep
seven to nine hours, and take short breaks from the screen. Small habits, repeated daily, matter more
than big plans that last a week.

Math practice: 7 + 8 = 15, 12 - 5 = 7, 6 * 7 = 42, 81 / 9 = 9, 2^10 = 1024, 15% of 200 is 30, and
the average of 4, 8 and 12 is 8. If x = 3 and y = 4, then x^2 + y^2 = 25, so the hypotenuse is 5.
Fractions: 1/2 + 1/4 = 3/4; 2/3 of 90 is 60; 0.75 equals 75 percent. Negative numbers: -3 - 4 = -7.

<html><head><title>Example</title></head><body><h1>Welcome</h1><p>This page is a test.</p></body></html>
# Heading
- bullet one
- bullet two
**bold**, _italic_, and \`inline code\` in markdown.
key: value
list:
  - alpha
  - beta
[section]
enabled = true
retries = 3

git commit -m "fix: handle empty input" && git push origin main
npm install --save-dev typescript && npx tsc -p . && node --test dist/test/
curl -s -X POST http://localhost:8080/v1/chat -H "Content-Type: application/json" -d '{"n": 1}'

Once upon a time a small robot lived in a lighthouse by the sea. Every night it climbed the stairs,
cleaned the lamp and watched the ships pass. One stormy evening the lamp went dark, and the robot had
to decide what to do. It found a spare bulb, fixed the wire, and the light shone again over the
waves. The sailors never knew who helped them, but the robot was glad all the same.
`;
