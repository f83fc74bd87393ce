// connect-web's gRPC-Web and Connect transports (in Node, on its fetch) calling the gateway:
// the schema comes from the demo's descriptor set at run time, no generated code.
//
//   node clients.mjs <gateway base URL> <descriptor set file>
//
// Prints one JSON object: per transport, what each call returned (or its error's code).

import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";

const [baseUrl, descriptors] = process.argv.slice(2);
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(descriptors)));
const service = (name) => {
  const found = registry.getService(name);
  if (!found) throw new Error(`no service ${name} in the descriptor set`);
  return found;
};

const transports = {
  "grpc-web": createGrpcWebTransport({ baseUrl }),
  "connect-json": createConnectTransport({ baseUrl }),
  "connect-proto": createConnectTransport({ baseUrl, useBinaryFormat: true }),
  "connect-get": createConnectTransport({ baseUrl, useHttpGet: true }),
};

const results = {};
for (const [name, transport] of Object.entries(transports)) {
  const users = createClient(service("demo.users.v1.UserService"), transport);
  const reviews = createClient(service("demo.reviews.v1.ReviewService"), transport);
  const storefront = createClient(service("demo.storefront.v1.Storefront"), transport);
  const result = {};
  const user = await users.getUser({ id: 5n });
  result.user = { id: user.user.id.toString(), displayName: user.user.displayName };
  const ids = [];
  if (name !== "connect-get") {
    for await (const review of reviews.streamReviews({ productId: 3n })) {
      ids.push(review.id.toString());
    }
  }
  result.streamed = ids;
  const page = await storefront.getProductPage({ productId: 7n, reviewLimit: 2 });
  result.page = { productId: page.product.id.toString(), reviews: page.reviews.length };
  try {
    await users.getUser({ id: 999999n });
    result.error = "none";
  } catch (error) {
    const e = ConnectError.from(error);
    result.error = { code: e.code, message: e.rawMessage };
  }
  results[name] = result;
}
console.log(JSON.stringify(results));
