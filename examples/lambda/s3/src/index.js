exports.handler = async () => ({ statusCode: 200, body: "api 1" })
